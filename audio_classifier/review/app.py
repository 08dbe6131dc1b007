"""The review page and its API, as a FastAPI router: served alone by ``audio-classifier
review`` and under ``/review`` by ``audio-classifier serve --review OUT``.

Security: only a loaded record's own file is ever served, by the record's id (a record's
path relative to ``--audio-root`` when one is given, and then it must resolve inside it);
anything else is 404. Writes need the page's CSRF token in a header and a JSON body. With
API keys configured, every route needs one: as for the service's other routes
(``Authorization: Bearer``, ``X-API-Key``), or a browser opens ``/review/?token=KEY`` once
and gets a same-site cookie.
"""

from __future__ import annotations

import asyncio
import csv
import hmac
import io
import secrets
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from ..errors import AudioClassifierError, UsageError
from ..labels import LABELS
from ..server.app import key_given
from ..server.runner import is_loopback
from .store import Filters, ReviewStore
from .visual import visual

COOKIE = "review_key"
"""The same-site cookie a browser keeps after ``?token=``: a keyed hash of the key, not the key."""
PAGE_LIMIT = 200
"""Most records one page request returns."""


def host_name(host_header: str) -> str:
    """The name in a Host header, without its port (IPv6 literals without brackets)."""
    if host_header.startswith("["):
        return host_header[1:].split("]", 1)[0]
    return host_header.rsplit(":", 1)[0] if host_header.count(":") == 1 else host_header


class Verdict(BaseModel):
    label: str = Field(max_length=40)
    reviewer: str = Field(max_length=200)
    note: str | None = Field(default=None, max_length=2000)


class GroupVerdict(BaseModel):
    ids: list[int] = Field(max_length=100000)
    label: str = Field(max_length=40)
    reviewer: str = Field(max_length=200)


class Enrolment(BaseModel):
    reviewer: str = Field(max_length=200)
    carrier: str | None = Field(default=None, max_length=200)
    lang: str | None = Field(default=None, max_length=20)


@dataclass
class ReviewSettings:
    store: ReviewStore
    audio_root: Path | None = None
    api_keys: frozenset[str] = frozenset()
    samples_path: Path | None = None
    """The sample library ``enrol`` writes to; None: the user's own (``samples.writable_library``,
    made from the shipped one at the first enrolment, not before)."""
    training_manifest: Path | None = None
    """The recordings manifest ``train`` appends to (``training.build --recordings``)."""
    csrf_token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    groups: dict[str, Any] | None = None
    """Discovery's groups, computed on first request (``discover``), with record ids."""
    write_lock: threading.Lock = field(default_factory=threading.Lock)
    """Held while the sample library or the training manifest is written."""
    groups_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held while discovery runs (minutes on a large output): one at a time, apart from writes."""
    offload: Callable[..., Awaitable[Any]] | None = None
    """Runs discovery (``offload(function, *args)``) where it takes no CPU a live call wants:
    ``serve --review`` gives its file processes, in the idle scheduling class. None: a thread
    of this process (``audio-classifier review``, nothing else to serve)."""

    def cookie_value(self, key: str) -> str:
        """What the cookie holds for *key*: a hash keyed by this process's secret."""
        return hmac.new(self.csrf_token.encode(), key.encode(), "sha256").hexdigest()


def audio_file(settings: ReviewSettings, path: str) -> Path | None:
    """The file a record's *path* names, if the page may serve it: under ``audio_root``
    when one is set (relative paths are taken from it), an existing regular file."""
    candidate = Path(path)
    if settings.audio_root is not None:
        root = settings.audio_root.resolve()
        candidate = (root / candidate).resolve() if not candidate.is_absolute() else candidate.resolve()
        if not candidate.is_relative_to(root):
            return None
    try:
        return candidate if candidate.is_file() else None
    except OSError:
        return None


def discovery_report(records: list[dict[str, Any]], audio_root: Path | None) -> dict[str, Any]:
    """``discover`` over *records*, as the page shows it (a module-level function: the
    server runs it in another process)."""
    from .discover import discover

    return discover(records, audio_root).to_dict()


def review_router(settings: ReviewSettings) -> APIRouter:
    """The page (``/``) and its API (``/api/...``); mount it under a prefix."""
    router = APIRouter()
    store = settings.store

    def authorise(request: Request) -> None:
        if not settings.api_keys:
            # DNS rebinding: a page elsewhere that points its own name at 127.0.0.1 sends that name
            if not is_loopback(host_name(request.headers.get("host", ""))):
                raise HTTPException(400, "without an API key the page answers only to loopback host names")
            return
        if key_given(request.headers, request.query_params, settings.api_keys):
            return
        cookie = request.cookies.get(COOKIE, "")
        if cookie and any(hmac.compare_digest(cookie, settings.cookie_value(k)) for k in settings.api_keys):
            return
        raise HTTPException(401, "an API key is needed: open /review/?token=KEY once, or send Authorization")

    def guard_write(request: Request) -> None:
        """Before the body is read: the key, the page's CSRF token, a JSON body."""
        authorise(request)
        token = request.headers.get("x-csrf-token", "")
        if not hmac.compare_digest(token.encode(), settings.csrf_token.encode()):
            raise HTTPException(403, "missing or wrong X-CSRF-Token (reload the page)")
        if not request.headers.get("content-type", "").startswith("application/json"):
            raise HTTPException(415, "send JSON")

    async def run(function, *args):
        return await asyncio.get_running_loop().run_in_executor(None, function, *args)

    @router.get("/", response_class=HTMLResponse)
    async def page(request: Request) -> Response:
        authorise(request)
        token = request.query_params.get("token")
        if token:  # a cookie from now on, and the key out of the address bar and history
            response = RedirectResponse(request.url.path, status_code=303)
            response.set_cookie(
                COOKIE, settings.cookie_value(token), httponly=True, samesite="strict", path=request.url.path
            )
            return response
        html = resources.files(__package__).joinpath("page.html").read_text(encoding="utf-8")
        labels = "".join(f'<option value="{name}">{name}</option>' for name in LABELS)
        html = html.replace("{{CSRF}}", settings.csrf_token).replace("{{LABELS}}", labels)
        return HTMLResponse(html, headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"})

    @router.get("/api/records")
    async def records(
        request: Request,
        offset: int = 0,
        limit: int = 50,
        label: str | None = None,
        action: str | None = None,
        min_confidence: float | None = None,
        max_confidence: float | None = None,
        column: str | None = None,
        value: str | None = None,
        reviewed: bool | None = None,
    ) -> dict[str, Any]:
        authorise(request)
        if offset < 0 or not 1 <= limit <= PAGE_LIMIT:
            raise HTTPException(422, f"offset >= 0 and 1 <= limit <= {PAGE_LIMIT}")
        filters = Filters(label, action, min_confidence, max_confidence, column or None, value, reviewed)
        try:
            total, items = await run(lambda: store.page(filters, offset, limit))
        except UsageError as exc:
            raise HTTPException(422, str(exc)) from None
        return {"total": total, "offset": offset, "items": items}

    @router.get("/api/records/{record_id}")
    async def record(request: Request, record_id: int) -> dict[str, Any]:
        authorise(request)
        found = await run(store.record, record_id)
        if found is None:
            raise HTTPException(404, "no such record")
        found["audio"] = audio_file(settings, found["path"]) is not None
        return found

    @router.get("/api/records/{record_id}/audio")
    async def audio(request: Request, record_id: int) -> FileResponse:
        authorise(request)
        path = await run(store.path_of, record_id)
        served = audio_file(settings, path) if path is not None else None
        if served is None:
            raise HTTPException(404, "no such recording")
        return FileResponse(served, headers={"Cache-Control": "private, max-age=300"})

    @router.get("/api/records/{record_id}/visual")
    async def drawing(request: Request, record_id: int) -> dict[str, Any]:
        authorise(request)
        path = await run(store.path_of, record_id)
        served = audio_file(settings, path) if path is not None else None
        if served is None:
            raise HTTPException(404, "no such recording")
        try:
            return await run(visual, served)
        except AudioClassifierError as exc:
            raise HTTPException(422, str(exc)) from None

    @router.post("/api/records/{record_id}/verdict", dependencies=[Depends(guard_write)])
    async def verdict(record_id: int, body: Verdict) -> dict[str, Any]:
        try:
            await run(lambda: store.correct(record_id, body.label, reviewer=body.reviewer, note=body.note))
        except KeyError:
            raise HTTPException(404, "no such record") from None
        except UsageError as exc:
            raise HTTPException(422, str(exc)) from None
        return {"ok": True}

    async def reviewed_recording(record_id: int) -> tuple[Path, str]:
        """A record's file and the label it carries now (the latest verdict, else the
        classifier's), or the HTTP error that says why not."""
        found = await run(store.record, record_id)
        if found is None:
            raise HTTPException(404, "no such record")
        path = audio_file(settings, found["path"])
        if path is None:
            raise HTTPException(404, "no such recording")
        label = (await run(store.verdict, record_id)) or found["record"].get("label")
        if label not in LABELS:
            raise HTTPException(422, "label the record first")
        return path, label

    @router.post("/api/records/{record_id}/enrol", dependencies=[Depends(guard_write)])
    async def enrol(record_id: int, body: Enrolment) -> dict[str, Any]:
        path, label = await reviewed_recording(record_id)

        def add() -> tuple[int, bool]:
            from ..samples import SampleLibrary, writable_library

            with settings.write_lock:
                if settings.samples_path is None:
                    settings.samples_path = writable_library(None)[0]
                with SampleLibrary(settings.samples_path, create=True) as library:
                    return library.add_file(path, label=label, carrier=body.carrier, lang=body.lang)

        try:
            sample_id, new = await run(add)
        except AudioClassifierError as exc:
            raise HTTPException(422, str(exc)) from None
        detail = {
            "sample_id": sample_id,
            "new": new,
            "library": str(settings.samples_path),
            "carrier": body.carrier,
        }
        await run(lambda: store.act(record_id, "enrol", label, detail, reviewer=body.reviewer))
        return {"ok": True, **detail, "label": label}

    @router.post("/api/records/{record_id}/train", dependencies=[Depends(guard_write)])
    async def train(record_id: int, body: Enrolment) -> dict[str, Any]:
        if settings.training_manifest is None:
            raise HTTPException(409, "no training manifest configured")
        path, label = await reviewed_recording(record_id)

        def append() -> None:
            manifest = settings.training_manifest
            with settings.write_lock:
                new = not manifest.exists() or manifest.stat().st_size == 0
                with open(manifest, "a", newline="", encoding="utf-8") as handle:
                    writer = csv.writer(handle)
                    if new:
                        writer.writerow(["path", "label", "carrier"])
                    writer.writerow([str(path), label, body.carrier or ""])

        await run(append)
        detail = {"manifest": str(settings.training_manifest), "carrier": body.carrier}
        await run(lambda: store.act(record_id, "train", label, detail, reviewer=body.reviewer))
        return {"ok": True, **detail, "label": label}

    @router.get("/api/groups")
    async def groups(request: Request, refresh: bool = False) -> dict[str, Any]:
        """New-prompt discovery over the loaded records (``discover.py``): computed once,
        again with ``refresh``."""
        authorise(request)
        async with settings.groups_lock:
            if settings.groups is None or refresh:
                loaded = await run(store.all_records)
                report = await (settings.offload or run)(
                    discovery_report, [r for _, r in loaded], settings.audio_root
                )
                id_of: dict[str, int] = {}
                for record_id, record in loaded:
                    id_of.setdefault(str(record.get("path")), record_id)
                for group in report["groups"]:
                    for member in group["members"]:
                        member["id"] = id_of.get(member["path"])
                settings.groups = report
            return settings.groups

    @router.post("/api/groups/verdict", dependencies=[Depends(guard_write)])
    async def group_verdict(body: GroupVerdict) -> dict[str, Any]:
        try:
            count = await run(lambda: store.correct_many(body.ids, body.label, reviewer=body.reviewer))
        except UsageError as exc:
            raise HTTPException(422, str(exc)) from None
        return {"ok": True, "labelled": count}

    @router.get("/api/export")
    async def export(request: Request) -> Response:
        authorise(request)

        def rows() -> str:
            out = io.StringIO()
            store.export(out, settings.audio_root)
            return out.getvalue()

        return Response(
            await run(rows),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="reviewed.csv"'},
        )

    @router.get("/api/agreement")
    async def agreement(request: Request) -> JSONResponse:
        authorise(request)
        return JSONResponse(await run(store.agreement))

    return router
