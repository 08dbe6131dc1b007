"""Command-line interface: ``audio-classifier COMMAND``.

Exit status: 0 all inputs succeeded, 1 some failed, 2 usage error.
"""

from __future__ import annotations

import sys

import click

from . import __version__
from .audio import ENCODINGS, SAMPLE_RATE
from .config import ClassifierConfig
from .errors import AudioClassifierError
from .labels import LABELS


def _config(max_duration: float | None, threshold: float | None, no_early: bool) -> ClassifierConfig:
    try:
        return ClassifierConfig().with_options(
            max_duration_s=max_duration,
            decision_threshold=threshold,
            early_decision=False if no_early else None,
        )
    except AudioClassifierError as exc:
        raise click.UsageError(str(exc)) from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="audio-classifier")
def main() -> None:
    """Classify telephone early media: carrier announcements, tones, SIT, answer types."""


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False),
    help="CSV with a 'path' column; other columns (number, source, sip_status, q850_cause, ...) are carried into the output.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    help="Write records to this .jsonl or .csv file (default: JSONL on stdout). An existing file is resumed: inputs already in it are skipped.",
)
@click.option(
    "-j", "--jobs", type=click.IntRange(1, 256), default=1, show_default=True, help="Worker processes."
)
@click.option("--max-duration", type=float, help="Analyse at most this many seconds per input [default: 60].")
@click.option("--threshold", type=float, help="Confidence at which a decision becomes final [default: 0.9].")
@click.option(
    "--no-early",
    is_flag=True,
    help="Analyse every input to its end instead of stopping at the first final decision.",
)
@click.option(
    "--channel",
    type=click.IntRange(0, 31),
    help="Analyse this channel of multi-channel audio (default: mix).",
)
@click.option(
    "--raw-encoding",
    type=click.Choice(ENCODINGS[:3]),
    help="Read every input as headerless audio in this encoding (by default only extensions such as .raw, .ul, .al are).",
)
@click.option(
    "--raw-rate",
    type=click.IntRange(4000, 384000),
    default=SAMPLE_RATE,
    show_default=True,
    help="Sample rate of headerless audio, Hz.",
)
@click.option(
    "--progress/--no-progress",
    default=None,
    help="Progress bar on stderr [default: when stderr is a terminal].",
)
def classify(
    paths: tuple[str, ...],
    manifest: str | None,
    output: str | None,
    jobs: int,
    max_duration: float | None,
    threshold: float | None,
    no_early: bool,
    channel: int | None,
    raw_encoding: str | None,
    raw_rate: int,
    progress: bool | None,
) -> None:
    """Classify audio files, directories (recursively) or a manifest's rows."""
    from .batch import ReadOptions, RecordWriter, UsageError, expand_paths, read_manifest, run

    config = _config(max_duration, threshold, no_early)
    if not paths and not manifest:
        raise click.UsageError("give audio files or directories, or --manifest CSV")
    try:
        items = read_manifest(manifest) if manifest else []
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None
    items += expand_paths(paths)
    if not items:
        raise click.UsageError("no audio inputs found (directories are searched for audio extensions)")
    extra_columns = list(dict.fromkeys(name for item in items for name in item.extra))
    writer = RecordWriter(output, extra_columns)
    done = writer.done_keys()
    todo = [item for item in items if item.key not in done]
    if done:
        click.echo(f"resuming: {len(items) - len(todo)} of {len(items)} inputs already in {output}", err=True)
    show = sys.stderr.isatty() if progress is None else progress
    from tqdm import tqdm

    bar = tqdm(total=len(todo), unit="file", disable=not show, file=sys.stderr, dynamic_ncols=True)
    options = ReadOptions(channel=channel, raw_encoding=raw_encoding, raw_sample_rate=raw_rate)
    try:
        with writer:
            succeeded, failed = run(
                todo,
                writer,
                config=config,
                options=options,
                jobs=jobs,
                on_record=lambda record: bar.update(1),
            )
    except KeyboardInterrupt:
        bar.close()
        click.echo("interrupted: records written so far are kept; run the same command to resume", err=True)
        sys.exit(130)
    bar.close()
    if failed:
        click.echo(f"{failed} of {succeeded + failed} inputs failed (see the 'error' field)", err=True)
        sys.exit(1)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def labels(as_json: bool) -> None:
    """List the label taxonomy: ID, names, number state and action."""
    if as_json:
        import json

        click.echo(json.dumps([vars(label) for label in LABELS.values()], ensure_ascii=False, indent=2))
        return
    for label in LABELS.values():
        click.echo(f"{label.id:20} {label.zh:8}\t{label.en:28} {label.number_state:14} {label.action}")


if __name__ == "__main__":  # pragma: no cover
    main()
