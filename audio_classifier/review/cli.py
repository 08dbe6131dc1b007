"""``audio-classifier review`` and ``audio-classifier discover``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import AudioClassifierError

if TYPE_CHECKING:
    from fastapi import FastAPI


def review_settings(
    output: Path,
    *,
    database: str | None = None,
    audio_root: str | None = None,
    api_keys: frozenset[str] = frozenset(),
    host: str = "127.0.0.1",
    samples: str | None = None,
    training_manifest: str | None = None,
    manifest_label: str = "label",
):
    """The review page's settings: *output* loaded into its review database (by default
    beside it), the sample library enrol writes and the recordings manifest train appends
    to. Raises ``click.ClickException`` for what the user must change."""
    from ..server.runner import is_loopback
    from .app import ReviewSettings
    from .store import ReviewStore

    if not api_keys and not is_loopback(host):
        raise click.ClickException(f"--host {host} is reachable from other machines: give an --api-key")
    try:
        store = ReviewStore(database or output.with_suffix(".review.sqlite"))
        total, added = store.load(output, manifest_label=manifest_label)
    except AudioClassifierError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"review: {total} records in {output} ({added} new to {store.path})", err=True)
    settings = ReviewSettings(
        store=store,
        audio_root=Path(audio_root) if audio_root else None,
        api_keys=api_keys,
        samples_path=Path(samples) if samples else None,
        training_manifest=Path(training_manifest)
        if training_manifest
        else output.with_suffix(".training.csv"),
    )
    _say_what_plays(settings)
    return settings


WHERE_PATHS_START = "the folder classify ran in (for a --manifest run, the manifest's folder)"
"""Where relative paths in an output start from: classify reads a manifest's relative paths
from the manifest's folder, and any other relative path from the folder it ran in."""

AUDIO_CHECK_RECORDS = 200
"""Records whose audio is looked for at start-up (a sample: the check must not take long)."""


def _say_what_plays(settings) -> None:
    """Warn when the page will not find the recordings: relative paths are as classify saw
    them (``WHERE_PATHS_START``), which ``--audio-root`` must name."""
    from .app import audio_file

    paths = list(settings.store.paths().values())[:AUDIO_CHECK_RECORDS]
    found = sum(audio_file(settings, p) is not None for p in paths)
    if paths and found < len(paths):
        where = f"under --audio-root {settings.audio_root}" if settings.audio_root else "from this folder"
        click.echo(
            f"note: {len(paths) - found} of the first {len(paths)} recordings are not found {where}; "
            f"relative paths are as classify saw them: give --audio-root {WHERE_PATHS_START}",
            err=True,
        )


def review_app(settings) -> FastAPI:
    """A FastAPI app serving the review page at ``/review/`` (``/`` leads there)."""
    from fastapi import FastAPI
    from fastapi.responses import RedirectResponse

    from .app import review_router

    app = FastAPI(title="audio_classifier review", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(review_router(settings), prefix="/review")

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/review/")

    return app


@click.command()
@click.argument("output", type=click.Path(exists=True))
@click.option(
    "--audio-root",
    type=click.Path(file_okay=False, exists=True),
    help="Relative paths are under this; only files under it are served.",
)
@click.option(
    "--db",
    "database",
    type=click.Path(dir_okay=False),
    help="Review database [default: OUTPUT.review.sqlite].",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8766, show_default=True)
@click.option(
    "--api-key",
    "api_keys",
    multiple=True,
    envvar="AUDIO_CLASSIFIER_API_KEYS",
    help="Accepted API key (repeatable; or $AUDIO_CLASSIFIER_API_KEYS); required off loopback.",
)
@click.option(
    "--samples",
    type=click.Path(dir_okay=False),
    help="Sample library that 'enrol' writes [default: the user's].",
)
@click.option(
    "--training-manifest",
    type=click.Path(dir_okay=False),
    help="Recordings manifest that 'add to training' appends to [default: OUTPUT.training.csv].",
)
@click.option(
    "--manifest-label", default="label", show_default=True, help="Manifest column with the expected label."
)
@click.option(
    "--export",
    "export_to",
    type=click.Path(dir_okay=False),
    help="Write the reviewed labels as a manifest and exit.",
)
def review(
    output: str,
    audio_root: str | None,
    database: str | None,
    host: str,
    port: int,
    api_keys: tuple[str, ...],
    samples: str | None,
    training_manifest: str | None,
    manifest_label: str,
    export_to: str | None,
) -> None:
    """Review a classify or evaluate OUTPUT in the browser: a queue ordered by what most
    needs a person, the audio with its waveform, spectrogram and evidence, and keyboard
    verdicts that count (export for evaluate, enrol, add to training)."""
    out = Path(output)
    keys = frozenset(k for value in api_keys for k in value.split())
    if export_to:
        from .store import ReviewStore

        try:
            store = ReviewStore(database or out.with_suffix(".review.sqlite"))
            store.load(out, manifest_label=manifest_label)
            with open(export_to, "w", newline="", encoding="utf-8") as handle:
                rows = store.export(handle, Path(audio_root) if audio_root else None)
        except (AudioClassifierError, OSError) as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"{rows} reviewed records written to {export_to}", err=True)
        if not rows:
            click.echo("note: no record has a verdict yet: the file holds only its header", err=True)
        if not audio_root and any(not Path(path).is_absolute() for path, _, _ in store.labelled()):
            click.echo(
                "note: relative paths were written as the output had them; give --audio-root "
                f"({WHERE_PATHS_START}) to write them absolute, for evaluate to find from anywhere",
                err=True,
            )
        return
    from ..server.runner import PortInUseError, check_free

    settings = review_settings(
        out,
        database=database,
        audio_root=audio_root,
        api_keys=keys,
        host=host,
        samples=samples,
        training_manifest=training_manifest,
        manifest_label=manifest_label,
    )
    try:
        check_free(host, port)
    except PortInUseError as exc:
        raise click.ClickException(str(exc)) from None
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"review page: http://{shown}:{port}/review/" + ("?token=KEY" if keys else ""), err=True)
    import uvicorn

    uvicorn.run(review_app(settings), host=host, port=port, log_level="warning")
    sys.exit(0)


@click.command()
@click.argument("output", type=click.Path(exists=True))
@click.option(
    "--audio-root", type=click.Path(file_okay=False, exists=True), help="Relative paths are under this."
)
@click.option(
    "-o",
    "--out",
    "out_path",
    type=click.Path(dir_okay=False),
    help="Write the groups as JSON here [default: stdout].",
)
def discover(output: str, audio_root: str | None, out_path: str | None) -> None:
    """Group the recordings of a classify or evaluate OUTPUT that no enrolled sample matched
    (and that are not tones) by whether they play the same recording: label a group at once,
    enrol its clearest member."""
    import json

    from .discover import discover as find_groups
    from .store import read_output

    try:
        records = list(read_output(Path(output)))

        def progress(done: int, total: int) -> None:
            if done % 200 == 0 or done == total:
                click.echo(f"\r{done}/{total} recordings read", err=True, nl=done == total)

        found = find_groups(records, audio_root, progress=progress)
    except AudioClassifierError as exc:
        raise click.ClickException(str(exc)) from None
    report = found.to_dict()
    unreadable = sum(1 for _, why in found.skipped if why.startswith("unreadable"))
    if unreadable:
        click.echo(
            f"note: {unreadable} of {len(records)} recordings could not be read; relative paths are as "
            f"classify saw them: give --audio-root {WHERE_PATHS_START}",
            err=True,
        )
    grouped = sum(g["size"] for g in report["groups"])
    click.echo(
        f"{report['candidates']} recordings no sample explains: {len(report['groups'])} groups holding "
        f"{grouped}, {len(report['alone'])} alone; {len(report['skipped'])} records left out",
        err=True,
    )
    text = json.dumps(report, ensure_ascii=False, indent=1)
    if out_path:
        Path(out_path).write_text(text + "\n", encoding="utf-8")
    else:
        click.echo(text)
    if unreadable and not found.paths:  # nothing could be grouped: it found no audio
        sys.exit(1)
