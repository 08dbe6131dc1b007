"""Command-line interface: ``audio-classifier COMMAND``.

Exit status: 0 all inputs succeeded, 1 some failed, 2 usage error.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from typing import TYPE_CHECKING

import click

from . import __version__
from .audio import ENCODINGS, SAMPLE_RATE
from .config import ClassifierConfig
from .errors import AudioClassifierError
from .labels import LABELS
from .numbers.cli import numbers as numbers_group
from .review.cli import discover as discover_command
from .review.cli import review as review_command

if TYPE_CHECKING:
    from pathlib import Path

    from .classifier import Classifier


CONTAINER_MAGIC = (b"RIFF", b"RIFX", b"RF64", b"fLaC", b"OggS", b"FORM")
"""How audio files start: a stream of raw samples that starts so is probably a file."""

CONFIG_OPTIONS = {
    "decision_threshold": "--threshold",
    "act_threshold": "--act-threshold",
    "max_duration_s": "--max-duration",
    "sit_wait_s": "--sit-wait",
}
"""Configuration fields as the command line names them, for its error messages."""


def _config(options: dict) -> ClassifierConfig:
    """The classifier configuration from the shared analysis options (see _analysis_options)."""
    try:
        config = ClassifierConfig().with_options(
            max_duration_s=options.pop("max_duration"),
            decision_threshold=options.pop("threshold"),
            act_threshold=options.pop("act_threshold"),
            sit_wait_s=options.pop("sit_wait"),
            early_decision=False if options.pop("no_early") else None,
            model_path=options.pop("model"),
            asr_model=options.pop("asr_model"),
            asr_required=options.pop("require_asr") or None,
            asr_grammar=options.pop("asr_grammar"),
            lexicon_dirs=tuple(options.pop("lexicon")) or None,
            samples_path=options.pop("samples_path"),
            confidence_map=options.pop("confidence_map"),
        )
    except AudioClassifierError as exc:
        message = str(exc)
        for field_name, option in CONFIG_OPTIONS.items():
            message = message.replace(field_name, option)
        raise click.UsageError(message) from None
    if config.confidence_map not in (None, "default"):
        from .calibration import ConfidenceMap

        try:
            ConfidenceMap.load(config.confidence_map)  # a bad file is a usage error, before any input
        except AudioClassifierError as exc:
            raise click.UsageError(str(exc)) from None
    if options.pop("no_confidence_map"):
        if config.confidence_map != "default":
            raise click.UsageError("--confidence-map and --no-confidence-map contradict each other")
        config = replace(config, confidence_map=None)
    if options.pop("no_samples"):
        config = replace(config, samples_path=None)
    if options.pop("no_model"):
        config = replace(config, model_path=None)  # with_options(None) would keep the model
    if options.pop("no_asr"):
        if config.asr_required:
            raise click.UsageError("--no-asr and --require-asr contradict each other")
        config = replace(config, asr_model=None)
    return config


class InputProblem(click.ClickException):
    """What a command was given to read is wrong (a manifest's rows or encoding, an output
    it would resume): said as ``Error: ...`` with exit status 2, as a usage error is, but
    without the usage text, which would not help."""

    exit_code = 2


def _check_channels(config: ClassifierConfig, *, notes: bool = True) -> Classifier:
    """Load the channels once in the main process: report problems, and (*notes*) the
    classifier's notes, once per run."""
    from .classifier import Classifier

    try:
        classifier = Classifier(config)
    except AudioClassifierError as exc:
        raise click.ClickException(str(exc)) from None  # exit status 1
    for note in classifier.notes if notes else ():
        click.echo(f"note: {note}", err=True)
    return classifier


def _analysis_options(function):
    """Options shared by every command that classifies audio."""
    options = [
        click.option(
            "--max-duration", type=float, help="Analyse at most this many seconds per input [default: 60]."
        ),
        click.option(
            "--threshold",
            type=float,
            help="Decision score (the record's score) at which a decision becomes final [default: 0.9].",
        ),
        click.option(
            "--act-threshold",
            type=float,
            help="Confidence a destructive list action (remove, suppress) needs; below it the "
            "action is review and the record says why [default: 0.925].",
        ),
        click.option(
            "--confidence-map",
            type=click.Path(dir_okay=False, exists=True),
            help="Map from decision scores to confidences (JSON, made by training/calibrate_decisions.py "
            "in the source repository) "
            "[default: the shipped model's].",
        ),
        click.option(
            "--no-confidence-map", is_flag=True, help="Report the decision score as the confidence."
        ),
        click.option(
            "--sit-wait",
            type=float,
            help="Seconds a SIT waits for the announcement it announces before deciding alone [default: 2.5].",
        ),
        click.option(
            "--no-early",
            is_flag=True,
            help="Analyse every input to its end instead of stopping at the first final decision.",
        ),
        click.option(
            "--model",
            type=click.Path(dir_okay=False),
            help="Trained model (.onnx beside its .json card) [default: the shipped one, or $AUDIO_CLASSIFIER_MODEL].",
        ),
        click.option("--no-model", is_flag=True, help="Run without the trained-model channel."),
        click.option(
            "--asr-model",
            help="Vosk speech model: a folder or the name of a fetched model "
            "[default: $AUDIO_CLASSIFIER_ASR_MODEL, else the fetched default model, else none].",
        ),
        click.option("--no-asr", is_flag=True, help="Run without the speech channel."),
        click.option(
            "--asr-grammar",
            type=click.Choice(["auto", "on", "off"]),
            help="Constrain recognition to the lexicon [default: auto: when the model has [unk]].",
        ),
        click.option("--require-asr", is_flag=True, help="Fail if no speech model is available."),
        click.option(
            "--lexicon",
            type=click.Path(file_okay=False, exists=True),
            multiple=True,
            help="Extra folder of <language>.tsv lexicon files (repeatable).",
        ),
        click.option(
            "--samples",
            "samples_path",
            type=click.Path(dir_okay=False),
            help="Sample library for fingerprint matching [default: $AUDIO_CLASSIFIER_SAMPLES, else the shipped one].",
        ),
        click.option("--no-samples", is_flag=True, help="Run without the fingerprint channel."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _batch_options(function):
    """Options of the commands that classify many files (classify, evaluate)."""
    options = [
        click.option(
            "-j",
            "--jobs",
            type=click.IntRange(1, 256),
            default=1,
            show_default=True,
            help="Worker processes.",
        ),
        click.option(
            "--progress/--no-progress",
            default=None,
            help="Progress bar on stderr [default: when stderr is a terminal].",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="audio-classifier")
def main() -> None:
    """Classify telephone early media: carrier announcements, tones, SIT, answer types."""


def _progress_bar(total: int, progress: bool | None):
    from tqdm import tqdm

    show = sys.stderr.isatty() if progress is None else progress
    return tqdm(total=total, unit="file", disable=not show, file=sys.stderr, dynamic_ncols=True)


@main.command()
@click.argument("paths", nargs=-1, type=click.Path())
@click.option(
    "--manifest",
    type=click.Path(dir_okay=False),
    help="CSV with a 'path' column; other columns (number, source, sip_status, q850_cause, ...) "
    "are carried into the output.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(),
    help="Write records to this .jsonl or .csv file, or a .parquet folder of parts (default: JSONL "
    "on stdout). An existing output is resumed: inputs already in it are skipped.",
)
@click.option(
    "--channel",
    type=click.IntRange(0, 31),
    help="Analyse this channel of multi-channel audio (default: mix).",
)
@click.option(
    "--raw-encoding",
    type=click.Choice(ENCODINGS[:3]),
    help="Read every input as headerless audio in this encoding (by default only extensions "
    "such as .raw, .ul, .al are).",
)
@click.option(
    "--raw-rate",
    type=click.IntRange(4000, 384000),
    default=SAMPLE_RATE,
    show_default=True,
    help="Sample rate of headerless audio, Hz.",
)
@click.option(
    "--cluster",
    metavar="ADDRESS",
    help="Run on a Dask cluster: a scheduler address (tcp://host:8786), or 'local' for worker "
    "processes on this machine (--jobs of them). Inputs may be fsspec URLs (s3://, gs://, "
    "https://) that the workers read; local paths must exist on every worker.",
)
@_analysis_options
@_batch_options
def classify(
    paths: tuple[str, ...],
    manifest: str | None,
    output: str | None,
    channel: int | None,
    raw_encoding: str | None,
    raw_rate: int,
    cluster: str | None,
    jobs: int,
    progress: bool | None,
    **analysis,
) -> None:
    """Classify audio files, directories (recursively), URLs or a manifest's rows."""
    from .batch import OutputError, ReadOptions, UsageError, expand_paths, read_manifest, record_writer, run

    config = _config(analysis)
    if not paths and not manifest:
        raise click.UsageError("give audio files or directories, or --manifest CSV")
    try:
        items = read_manifest(manifest) if manifest else []
    except UsageError as exc:
        raise InputProblem(str(exc)) from None
    try:
        items += expand_paths(
            paths, on_skip=lambda reason: click.echo(f"note: not searched: {reason}", err=True)
        )
    except UsageError as exc:
        raise InputProblem(str(exc)) from None
    if not items:
        raise click.UsageError("no audio inputs found (directories are searched for audio extensions)")
    _check_channels(config)
    extra_columns = list(dict.fromkeys(name for item in items for name in item.extra))
    if output and manifest and os.path.exists(output) and os.path.samefile(output, manifest):
        raise click.UsageError(f"-o {output} is the manifest itself: give another output file")
    try:
        if cluster:
            from .cluster import require_dask

            require_dask()  # before -o is opened: a usage error leaves no empty output behind
        writer = record_writer(output, extra_columns)
        todo = writer.resume(items)
    except UsageError as exc:
        raise InputProblem(str(exc)) from None
    if len(todo) < len(items):
        click.echo(f"resuming: {len(items) - len(todo)} of {len(items)} inputs already in {output}", err=True)
    bar = _progress_bar(len(todo), progress)
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
                cluster=cluster,
            )
    except KeyboardInterrupt:
        bar.close()
        click.echo("interrupted: records written so far are kept; run the same command to resume", err=True)
        sys.exit(130)
    except UsageError as exc:
        raise InputProblem(str(exc)) from None
    except OutputError as exc:
        bar.close()
        raise click.ClickException(str(exc)) from None
    bar.close()
    if failed:
        click.echo(f"{failed} of {succeeded + failed} inputs failed (see the 'error' field)", err=True)
        sys.exit(1)


def _parse_thresholds(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[float, ...]:
    if not value:
        return ()
    try:
        values = tuple(float(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"expected numbers separated by commas, got {value!r}") from None
    bad = [v for v in values if not 0.0 < v <= 1.0]
    if bad or not values:
        raise click.BadParameter(f"thresholds must be within (0, 1], got {value!r}")
    return values


@main.command()
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--out-dir",
    type=click.Path(file_okay=False),
    default="evaluation",
    show_default=True,
    help="Where predictions.jsonl, metrics.json and the plots go (an existing run is resumed).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON instead of a report.")
@click.option(
    "--thresholds",
    callback=_parse_thresholds,
    metavar="T1,T2,...",
    help="Also compare these decision thresholds (e.g. 0.8,0.85,0.9,0.95): each clip is "
    "analysed to its end once and every threshold's decisions are replayed from it. "
    "Slower than a plain run (no early stop); writes streams.jsonl.",
)
@click.option(
    "--by",
    "slices",
    multiple=True,
    metavar="COLUMN",
    help="Also report accuracy and decision time per value of this manifest column "
    "(e.g. lead, codec, noise; repeatable).",
)
@click.option(
    "--compare-model",
    type=click.Path(exists=True, dir_okay=False),
    help="Also classify every call with this model (its card beside it) and put the two side by "
    "side: figures, F1 per label, and the calls only one gets right. Its run goes to "
    "OUT_DIR/compare-model. Its confidence is its score unless it is the shipped model (the "
    "shipped map is for the shipped model): add --no-confidence-map to compare both on their "
    "scores, actions included.",
)
@click.option(
    "--restart",
    is_flag=True,
    help="Discard the run already in OUT_DIR and start anew (by default it is resumed, and "
    "refused when it was made with other settings).",
)
@_analysis_options
@_batch_options
def evaluate(
    manifest: str,
    out_dir: str,
    as_json: bool,
    thresholds: tuple[float, ...],
    slices: tuple[str, ...],
    compare_model: str | None,
    restart: bool,
    jobs: int,
    progress: bool | None,
    **analysis,
) -> None:
    """Measure accuracy, macro-F1, per-class scores, calibration and decision times on a
    manifest with 'path' and 'label' columns (and optionally 'onset_s')."""
    import json
    from pathlib import Path

    from .batch import OutputError, UsageError
    from .evaluate import check_slices, compare_thresholds, format_report, plot, predict, replay, score

    config = _config(analysis)
    classifier = _check_channels(config)
    folder = Path(out_dir)
    if compare_model and thresholds:
        raise click.UsageError("--compare-model and --thresholds: choose one per run")
    try:
        from .batch import read_manifest

        rows = read_manifest(manifest)
        slices = tuple(check_slices(rows, slices))
        bar = _progress_bar(len(rows), progress)
        items, written, _ = predict(
            Path(manifest),
            folder,
            config=config,
            jobs=jobs,
            on_record=lambda record: bar.update(1),
            peaks=bool(thresholds),
            settings=classifier.settings(),
            restart=restart,
        )
        bar.close()
        predictions = written
        if thresholds:
            threshold = config.decision.decision_threshold if config.early_decision else None
            predictions = folder / "predictions.jsonl"
            act = classifier.act_threshold
            streams = replay(items, written, predictions, threshold, act_threshold=act)
            compared = compare_thresholds(
                items, streams, thresholds + ((threshold,) if threshold else ()), act_threshold=act
            )
    except UsageError as exc:
        raise InputProblem(str(exc)) from None
    except OutputError as exc:
        raise click.ClickException(str(exc)) from None
    metrics = score(items, predictions, by=slices)
    if thresholds:
        metrics["thresholds"] = compared
    comparison = None
    if compare_model:
        comparison = _compare_models(
            manifest, folder, config, compare_model, items, predictions, jobs, progress, restart
        )
        metrics["comparison"] = comparison
    with open(folder / "metrics.json", "w", encoding="utf-8") as handle:
        json.dump(metrics, handle, indent=2)
    try:
        written = plot(metrics, folder)
    except ImportError:
        written = []
        click.echo("note: matplotlib is not installed; no plots written", err=True)
    click.echo(json.dumps(metrics, indent=2) if as_json else format_report(metrics))
    click.echo(f"wrote {folder / 'metrics.json'}" + "".join(f", {p}" for p in written), err=True)
    if comparison is not None and not as_json:
        from .evaluate import format_comparison

        click.echo("")
        click.echo(format_comparison(comparison, *comparison["names"]))
    if metrics["errors"]:
        click.echo(
            f"{len(metrics['errors'])} of {metrics['inputs']} inputs failed (their 'error' in "
            f"{predictions}); the figures above leave them out",
            err=True,
        )
        sys.exit(1)


def _compare_models(
    manifest: str,
    folder: Path,
    config: ClassifierConfig,
    other: str,
    items: list,
    predictions,
    jobs: int,
    progress: bool | None,
    restart: bool = False,
) -> dict:
    """``evaluate --compare-model``: the same calls with *other* as the model; returns
    ``evaluate.compare``'s figures (also written to OUT_DIR/compare-model/comparison.json)."""
    import hashlib
    import json
    from pathlib import Path

    from .evaluate import compare, predict, read_records

    # "default": the shipped map when *other* is the shipped model, else the score
    second = replace(config, model_path=str(other), confidence_map="default")
    second_classifier = _check_channels(second)
    out = folder / "compare-model"
    # a run of another model in this folder must not be resumed
    digest = hashlib.sha256(Path(other).read_bytes()).hexdigest()
    stamp = out / "model.sha256"
    if not stamp.is_file() or stamp.read_text(encoding="utf-8").strip() != digest:
        (out / "predictions.jsonl").unlink(missing_ok=True)
        out.mkdir(parents=True, exist_ok=True)
        stamp.write_text(digest + "\n", encoding="utf-8")
    bar = _progress_bar(len(items), progress)
    _, written, _ = predict(
        Path(manifest),
        out,
        config=second,
        jobs=jobs,
        on_record=lambda record: bar.update(1),
        settings=second_classifier.settings(),
        restart=restart,
    )
    bar.close()
    compared = compare(items, read_records(items, predictions), read_records(items, written))
    first_name = "early_media" if config.model_path == "default" else Path(str(config.model_path)).stem
    second_name = Path(other).stem
    if second_name == first_name:
        first_name, second_name = "first", "second"
    compared["models"] = {"first": str(config.model_path), "second": str(other)}
    compared["names"] = [first_name, second_name]
    with open(out / "comparison.json", "w", encoding="utf-8") as handle:
        json.dump(compared, handle, indent=2)
    click.echo(f"wrote {out / 'comparison.json'}", err=True)
    return compared


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


@main.command()
@click.option(
    "--rate",
    type=click.IntRange(4000, 384000),
    default=SAMPLE_RATE,
    show_default=True,
    help="Sample rate, Hz.",
)
@click.option("--encoding", type=click.Choice(ENCODINGS[:3]), default="pcm_s16le", show_default=True)
@click.option("--channels", type=click.IntRange(1, 32), default=1, show_default=True)
@click.option("--sip-status", type=int, help="Signalling hint: SIP final status.")
@click.option("--q850-cause", type=int, help="Signalling hint: Q.850 cause.")
@click.option("--final-only", is_flag=True, help="Print only the final decision.")
@_analysis_options
def stream(rate, encoding, channels, sip_status, q850_cause, final_only, **analysis) -> None:
    """Classify raw audio piped on standard input; print decisions as JSON lines."""
    import json

    config = _config(analysis)
    from .classifier import Classifier

    try:
        classifier = Classifier(config)
        for note in classifier.notes:
            click.echo(f"note: {note}", err=True)
        session = classifier.open_session(
            rate, encoding, {"sip_status": sip_status, "q850_cause": q850_cause}, channels=channels
        )
    except AudioClassifierError as exc:
        raise click.ClickException(str(exc)) from None
    source = sys.stdin.buffer
    chunk = max(1, rate * channels * (2 if encoding == "pcm_s16le" else 1) // 50)  # 20 ms
    first = True
    try:
        while data := source.read1(chunk) if hasattr(source, "read1") else source.read(chunk):
            if first and data.startswith(CONTAINER_MAGIC):
                click.echo(
                    "note: the input starts like an audio file (WAV, FLAC, Ogg), but stream reads raw "
                    f"{encoding} audio: its header is heard as audio; use 'classify FILE' for files, or "
                    "send raw samples (e.g. sox call.wav -t raw - | audio-classifier stream ...)",
                    err=True,
                )
            first = False
            for update in session.feed(data):
                if update.final or not final_only:
                    click.echo(json.dumps({"type": "decision", **update.to_dict()}, ensure_ascii=False))
                    sys.stdout.flush()
        if not session.final:
            click.echo(json.dumps({"type": "decision", **session.close().to_dict()}, ensure_ascii=False))
    except AudioClassifierError as exc:
        click.echo(json.dumps({"type": "error", "error": f"{type(exc).__name__}: {exc}"}))
        sys.exit(1)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option(
    "--audiosocket-port", type=click.IntRange(0, 65535), help="Also listen for Asterisk AudioSocket here."
)
@click.option(
    "--api-key",
    "api_keys",
    multiple=True,
    envvar="AUDIO_CLASSIFIER_API_KEYS",
    help="Accepted API key (repeatable; or $AUDIO_CLASSIFIER_API_KEYS, space-separated).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=1,
    show_default=True,
    help="Processes (each loads the models; the kernel spreads connections).",
)
@click.option("--max-sessions", type=click.IntRange(1, 100000), default=400, show_default=True)
@click.option(
    "--idle-timeout", type=float, default=30.0, show_default=True, help="Seconds without a message."
)
@click.option(
    "--max-session", type=float, default=600.0, show_default=True, help="Seconds a stream may last."
)
@click.option("--callback-url", help="POST final decisions of AudioSocket and Twilio calls here.")
@click.option(
    "--audiosocket-host",
    default="127.0.0.1",
    show_default=True,
    help="Address AudioSocket listens on (it has no API key: keep it on loopback or a private network).",
)
@click.option(
    "--audiosocket-allow",
    multiple=True,
    metavar="IP",
    help="Accept AudioSocket connections only from this address (repeatable) [default: any].",
)
@click.option(
    "--audiosocket-max-sessions",
    type=click.IntRange(1, 100000),
    default=100,
    show_default=True,
    help="AudioSocket calls at once (a pool of their own).",
)
@click.option(
    "--file-processes",
    type=click.IntRange(0, 64),
    default=1,
    show_default=True,
    help="Processes per worker for POST /v1/classify files, at lower CPU priority than the live "
    "streams (0: the serving process's threads).",
)
@click.option(
    "--max-uploads",
    type=click.IntRange(1, 32),
    default=16,
    show_default=True,
    help="POST /v1/classify uploads in progress at once per worker (at most 32, half the "
    "connections kept beyond --max-sessions); more get 503 busy with Retry-After.",
)
@click.option(
    "--numbers-db",
    help="Record streams' final decisions (metadata 'number') in this number registry and take "
    "agents' marks on POST /v1/numbers/{number}/events (a SQLite file or a URL).",
)
@click.option("--docs", is_flag=True, help="Serve the API's /docs and /openapi.json.")
@click.option(
    "--review",
    "review_output",
    type=click.Path(dir_okay=False, exists=True),
    help="Also serve the review page for this classify or evaluate output at /review/ "
    "(see 'audio-classifier review'; behind the API key).",
)
@click.option(
    "--review-db",
    type=click.Path(dir_okay=False),
    help="Its review database [default: OUTPUT.review.sqlite].",
)
@click.option(
    "--audio-root",
    type=click.Path(file_okay=False, exists=True),
    help="The review page's recordings: relative paths are under this, and only files under it are played.",
)
@_analysis_options
def serve(
    host,
    port,
    audiosocket_port,
    api_keys,
    workers,
    max_sessions,
    idle_timeout,
    max_session,
    callback_url,
    audiosocket_host,
    audiosocket_allow,
    audiosocket_max_sessions,
    file_processes,
    max_uploads,
    numbers_db,
    docs,
    review_output,
    review_db,
    audio_root,
    **analysis,
) -> None:
    """Serve inline classification: WebSocket /v1/stream, /v1/twilio, POST /v1/classify,
    AudioSocket, /healthz, /readyz, /metrics."""
    from functools import partial

    from .server import ServerSettings
    from .server import serve as run_server
    from .server.runner import PortInUseError

    config = _config(analysis)
    if workers == 1:
        _check_channels(config, notes=False)  # fail fast; the server logs the notes as it starts
    keys = frozenset(k for value in api_keys for k in value.split())
    settings = ServerSettings(
        api_keys=keys,
        max_sessions=max_sessions,
        idle_timeout_s=idle_timeout,
        max_session_s=max_session,
        callback_url=callback_url,
        audiosocket_max_sessions=audiosocket_max_sessions,
        audiosocket_allow=frozenset(audiosocket_allow),
        file_processes=file_processes,
        max_uploads=max_uploads,
        numbers_db=numbers_db,
        docs=docs,
        review=_review_settings(review_output, review_db, audio_root, keys, host, workers)
        if review_output
        else None,
    )
    factory = partial(_app, config, settings)
    audiosocket = (audiosocket_host, audiosocket_port) if audiosocket_port is not None else None
    try:
        run_server(factory, host, port, audiosocket, workers=workers)
    except PortInUseError as exc:
        raise click.ClickException(str(exc)) from None


def _review_settings(
    output: str, database: str | None, audio_root: str | None, keys: frozenset[str], host: str, workers: int
):
    """The review page's settings for ``serve --review``: its output loaded now, once."""
    from pathlib import Path

    from .review.cli import review_settings

    if workers > 1:
        raise click.ClickException(
            "--review serves from one process: use --workers 1, or 'audio-classifier review'"
        )
    return review_settings(Path(output), database=database, audio_root=audio_root, api_keys=keys, host=host)


def _app(config: ClassifierConfig, settings):
    from .classifier import Classifier
    from .server.app import create_app

    return create_app(lambda: Classifier(config), settings)


@main.group()
def lexicon() -> None:
    """The prompt lexicon (phrases -> labels)."""


@lexicon.command("check")
@click.option("--asr-model", help="Also list phrase words missing from this speech model's vocabulary.")
@click.option(
    "--lexicon",
    "folders",
    type=click.Path(file_okay=False, exists=True),
    multiple=True,
    help="Extra lexicon folder (repeatable).",
)
def lexicon_check(asr_model: str | None, folders: tuple[str, ...]) -> None:
    """Validate the lexicon files; report conflicts and, given a model, missing words."""
    from .lexicon import Lexicon

    try:
        lex = Lexicon.load(folders)
    except AudioClassifierError as exc:
        raise click.ClickException(str(exc)) from None
    problems = lex.check()
    counts = ", ".join(f"{lang}: {len(lex.phrases(lang))}" for lang in lex.languages())
    click.echo(f"{len(lex.entries)} phrases ({counts})")
    for problem in problems:
        click.echo(problem)
    missing = []
    if asr_model:
        from .channels.asr import VoskChannel
        from .model_store import resolve_asr_model

        try:
            channel = VoskChannel(resolve_asr_model(asr_model), lex)  # type: ignore[arg-type]
        except AudioClassifierError as exc:
            raise click.ClickException(str(exc)) from None
        missing = channel.missing_words()
        for phrase, where, pieces in missing:
            click.echo(f"not in the model's vocabulary: {' '.join(pieces)!r} in {phrase!r} ({where})")
        click.echo(
            f"{len(missing)} phrase(s) with words the model does not know; grammar mode: "
            f"{channel.mode} ({len(channel.grammar or [])} grammar phrases)"
        )
    if problems or missing:
        sys.exit(1)


def _library(path: str | None, *, write: bool = False, create: bool = True):
    """The sample library to open: to read, as ``resolve_library``; to write, as
    ``writable_library`` (never the shipped file)."""
    from .samples import SampleLibrary, resolve_library, writable_library

    try:
        if write:
            target, note = writable_library(path)
            if note:
                click.echo(f"note: {note}", err=True)
            return SampleLibrary(target, create=create)
        found = resolve_library(path)
        if found is None:
            raise click.UsageError("no sample library: give --samples PATH")
        return SampleLibrary(found)
    except AudioClassifierError as exc:
        raise click.ClickException(str(exc)) from None


_samples_option = click.option(
    "--samples",
    "library_path",
    type=click.Path(dir_okay=False),
    help="The library file [default: $AUDIO_CLASSIFIER_SAMPLES, else your own library "
    "(made from the shipped one on the first enrolment), else the shipped one].",
)


@main.group()
def samples() -> None:
    """The sample library of known carrier recordings (fingerprint matching)."""


@samples.command("add")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--label", required=True, type=click.Choice(list(LABELS)), help="What these recordings say.")
@click.option("--lang", help="Language of the recording (zh, en, ...).")
@click.option("--carrier", help="Carrier or switch that plays it.")
@click.option("--note", help="Free text.")
@_samples_option
def samples_add(files, label, lang, carrier, note, library_path) -> None:
    """Enrol recordings: they are matched from the next call on, no retraining."""
    failed = 0
    with _library(library_path, write=True) as library:
        for path in files:
            try:
                sample_id, new = library.add_file(path, label=label, lang=lang, carrier=carrier, note=note)
                click.echo(
                    f"{'added' if new else 'already enrolled'}: {path} as sample {sample_id} ({label})"
                )
            except AudioClassifierError as exc:
                failed += 1
                click.echo(f"failed: {path}: {exc}", err=True)
    sys.exit(1 if failed else 0)


@samples.command("import")
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False))
@_samples_option
def samples_import(manifest, library_path) -> None:
    """Enrol every row of a CSV with path and label (and optional lang, carrier, note)."""
    failed = 0
    with _library(library_path, write=True) as library:
        try:
            for path, sample_id, new, error in library.import_manifest(manifest):
                if error:
                    failed += 1
                    click.echo(f"failed: {path}: {error}", err=True)
                else:
                    click.echo(f"{'added' if new else 'already enrolled'}: {path} as sample {sample_id}")
        except AudioClassifierError as exc:
            raise InputProblem(str(exc)) from None
    sys.exit(1 if failed else 0)


@samples.command("list")
@_samples_option
def samples_list(library_path) -> None:
    """The enrolled recordings."""
    with _library(library_path) as library:
        click.echo(f"{library.path}")
        for s in library.list():
            click.echo(
                f"{s.id:6d} {s.label:20s} {s.lang or '-':4s} {s.carrier or '-':12s} {s.duration_s:6.1f} s "
                f"{s.landmarks:6d} landmarks  {s.source or ''}"
            )


@samples.command("remove")
@click.argument("sample_id", type=int)
@_samples_option
def samples_remove(sample_id, library_path) -> None:
    """Remove one recording by id."""
    with _library(library_path, write=True, create=False) as library:
        if not library.remove(sample_id):
            raise click.ClickException(f"no sample {sample_id} in {library.path}")
        click.echo(f"removed sample {sample_id}")


@samples.command("export")
@click.argument("out", type=click.Path(dir_okay=False))
@_samples_option
def samples_export(out, library_path) -> None:
    """Write the library's samples (id, source path, label, ...) as CSV ('-': standard output)."""
    with _library(library_path) as library:
        if out == "-":
            library.export(sys.stdout)
            return
        click.echo(f"exported {library.export(out)} samples to {out}")


@main.group()
def models() -> None:
    """Speech models: list and fetch (the only commands that download anything)."""


@models.command("list")
def models_list() -> None:
    """Known speech models and whether they are installed in the cache."""
    from .model_store import KNOWN_MODELS, cache_dir, installed

    click.echo(f"cache: {cache_dir()}")
    for model in KNOWN_MODELS.values():
        where = installed(model.name)
        click.echo(
            f"{model.name:32s} {model.language:3s} {'installed at ' + str(where) if where else 'not installed'}"
        )


@models.command("fetch")
@click.argument("name")
@click.option("--url", help="Download from this address instead of the known one.")
@click.option("--sha256", help="Expected SHA-256 of the archive (required where none is recorded).")
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    help="Cache folder [default: $AUDIO_CLASSIFIER_CACHE or ~/.cache/audio_classifier].",
)
def models_fetch(name: str, url: str | None, sha256: str | None, cache_dir: str | None) -> None:
    """Download, verify (SHA-256) and unpack a speech model; resumes an interrupted download."""
    from pathlib import Path

    from tqdm import tqdm

    from .model_store import fetch

    bar = tqdm(unit="B", unit_scale=True, disable=not sys.stderr.isatty(), file=sys.stderr, desc=name)

    def progress(done: int, total: int | None) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        path = fetch(
            name, url=url, sha256=sha256, cache=Path(cache_dir) if cache_dir else None, progress=progress
        )
    except AudioClassifierError as exc:
        bar.close()
        raise click.ClickException(str(exc)) from None
    bar.close()
    click.echo(str(path))


main.add_command(numbers_group)
main.add_command(review_command)
main.add_command(discover_command)


if __name__ == "__main__":  # pragma: no cover
    main()
