"""Speech models on disk: where they are found, and an explicit, verified download.

Nothing is downloaded unless the user runs ``audio-classifier models fetch NAME``. A fetch
resumes a partial download (HTTP Range), checks the size and SHA-256, and unpacks into the
cache atomically (into a temporary folder, then one rename), so a model folder either is
complete or does not exist.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelError
from .resources import user_folder

CACHE_ENV = "AUDIO_CLASSIFIER_CACHE"
ASR_MODEL_ENV = "AUDIO_CLASSIFIER_ASR_MODEL"
BLOCK_BYTES = 1 << 20
TIMEOUT_S = 60.0


@dataclass(frozen=True)
class KnownModel:
    name: str
    url: str
    language: str
    size: int | None
    sha256: str | None
    """None where no published checksum is recorded: the user must give one."""


KNOWN_MODELS: dict[str, KnownModel] = {
    m.name: m
    for m in (
        # Apache-2.0; size from the provider's listing. Its SHA-256 could not be confirmed when
        # this entry was written, so 'models fetch' asks for --sha256 (see README).
        KnownModel(
            "vosk-model-small-cn-0.22",
            "https://alphacephei.com/vosk/models/vosk-model-small-cn-0.22.zip",
            "zh",
            43_898_754,
            None,
        ),
        KnownModel(
            "vosk-model-small-en-us-0.15",
            "https://alphacephei.com/vosk/models/vosk-model-small-en-us-0.15.zip",
            "en",
            None,
            "30f26242c4eb449f948e42cb302dd7a686cb29a3423a8367f99ff41780942498",
        ),
    )
}
DEFAULT_ASR_MODEL = "vosk-model-small-cn-0.22"

MODEL_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")
"""What a model name may be: it names a folder in the cache, so nothing that leaves it."""

SHA256_HEX = re.compile(r"[0-9A-Fa-f]{64}")
"""A SHA-256 as providers publish it: checked before anything is downloaded."""


def fetch_command(name: str = DEFAULT_ASR_MODEL) -> str:
    """The ``models fetch`` command for *name* as the user must type it: with ``--sha256``
    where no published checksum is recorded for it (``fetch`` refuses without one)."""
    known = KNOWN_MODELS.get(name)
    checksum = " --sha256 SHA256_OF_THE_ARCHIVE" if known is None or known.sha256 is None else ""
    return f"audio-classifier models fetch {name}{checksum}"


def cache_dir() -> Path:
    """``$AUDIO_CLASSIFIER_CACHE``, else ``$XDG_CACHE_HOME/audio_classifier``, else ``~/.cache/audio_classifier``."""
    return user_folder(CACHE_ENV, "XDG_CACHE_HOME", ".cache")


def installed(name: str, cache: Path | None = None) -> Path | None:
    path = (cache or cache_dir()) / "models" / name
    return path if path.is_dir() else None


def resolve_asr_model(option: str | None) -> Path | None:
    """The speech model to use: the option (a path, or the name of a fetched model), else
    ``$AUDIO_CLASSIFIER_ASR_MODEL``, else the default model if it has been fetched."""
    choice = option or os.environ.get(ASR_MODEL_ENV)
    if choice:
        path = Path(choice)
        if path.exists():
            return path
        fetched = installed(choice)
        if fetched:
            return fetched
        raise ModelError(
            f"speech model not found: {choice} (a folder, or a model fetched with 'models fetch')"
        )
    return installed(DEFAULT_ASR_MODEL)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(BLOCK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


Progress = Callable[[int, int | None], None]
"""Called with (bytes so far, total bytes or None)."""


def download(url: str, target: Path, progress: Progress | None = None, timeout: float = TIMEOUT_S) -> None:
    """Download *url* to *target*, resuming from what *target* already holds."""
    have = target.stat().st_size if target.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:  # nothing left to fetch
            return
        raise ModelError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise ModelError(f"download of {url} failed: {getattr(exc, 'reason', exc)}") from None
    with response:
        resumed = response.status == 206
        length = response.headers.get("Content-Length")
        total = (int(length) + (have if resumed else 0)) if length else None
        done = have if resumed else 0
        with open(target, "ab" if resumed else "wb") as handle:
            try:
                while block := response.read(BLOCK_BYTES):
                    handle.write(block)
                    done += len(block)
                    if progress:
                        progress(done, total)
            except (OSError, urllib.error.URLError) as exc:
                raise ModelError(
                    f"download of {url} interrupted after {done} bytes ({exc}); "
                    f"run the same command again to resume"
                ) from None
        if total is not None and done < total:
            raise ModelError(
                f"download of {url} interrupted after {done} of {total} bytes; "
                f"run the same command again to resume"
            )


def unpack(archive: Path, destination: Path) -> None:
    """Unpack a zip holding one model folder into *destination*, atomically."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".unpack-{destination.name}-", dir=destination.parent))
    try:
        try:
            with zipfile.ZipFile(archive) as bundle:
                root = work.resolve()
                for member in bundle.namelist():
                    if not (work / member).resolve().is_relative_to(root):
                        raise ModelError(f"{archive}: refusing a path outside the archive folder: {member}")
                bundle.extractall(work)
        except zipfile.BadZipFile as exc:
            raise ModelError(
                f"{archive} is not a valid zip archive ({exc}); delete it and fetch again"
            ) from None
        entries = [p for p in work.iterdir() if not p.name.startswith(".")]
        source = entries[0] if len(entries) == 1 and entries[0].is_dir() else work
        if not (source / "am").is_dir() and not (source / "final.mdl").exists():
            raise ModelError(f"{archive} does not contain a Vosk model (no am/ folder)")
        if destination.exists():
            shutil.rmtree(destination)
        os.replace(source, destination)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def fetch(
    name: str,
    *,
    url: str | None = None,
    sha256: str | None = None,
    cache: Path | None = None,
    progress: Progress | None = None,
) -> Path:
    """Download, verify and unpack a speech model; return its folder. Idempotent."""
    if not MODEL_NAME.fullmatch(name) or name.strip(".") == "":
        raise ModelError(
            f"model name {name!r}: use letters, digits, '.', '_' and '-' only (it names a folder)"
        )
    known = KNOWN_MODELS.get(name)
    if known is None and not url:
        raise ModelError(
            f"unknown model {name!r}; known: {', '.join(KNOWN_MODELS)} (or give --url and --sha256)"
        )
    if sha256 is not None and not SHA256_HEX.fullmatch(sha256):
        raise ModelError(f"--sha256 {sha256!r}: give the archive's SHA-256 as 64 hexadecimal digits")
    expected = (sha256 or (known.sha256 if known else None) or "").lower() or None
    if expected is None:
        raise ModelError(
            f"no SHA-256 is recorded for {name}: get it from the model's provider and pass --sha256 HEX "
            f"(a download is never installed unverified)"
        )
    cache = cache or cache_dir()
    target = cache / "models" / name
    if target.is_dir():
        return target
    downloads = cache / "downloads"
    downloads.mkdir(parents=True, exist_ok=True)
    part = downloads / f"{name}.zip.part"
    download(url or known.url, part, progress)  # type: ignore[union-attr]
    size = part.stat().st_size
    if known and known.size and not url and size != known.size:
        part.unlink()
        raise ModelError(
            f"{name}: downloaded {size} bytes, expected {known.size}; the partial file was removed"
        )
    actual = sha256_of(part)
    if actual != expected:
        part.unlink()
        raise ModelError(
            f"{name}: SHA-256 mismatch (got {actual}, expected {expected}); the download was removed"
        )
    try:
        unpack(part, target)
    finally:
        part.unlink(missing_ok=True)  # verified or not, a bad archive must not be retried as is
    return target
