"""The public entry point: a :class:`Classifier` shared by every call in a process."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .audio import SAMPLE_RATE, StreamConverter, open_file
from .calibration import ConfidenceMap
from .channels import ChannelFactory
from .channels.signalling import Hints
from .channels.tone import ToneChannel
from .config import ClassifierConfig
from .errors import EmptyAudioError, UnsupportedEncodingError
from .evidence import Decision
from .session import Session

WARM_UP_S = 2.0
"""Audio :meth:`Classifier.warm_up` runs through a session: past the first model window."""

HintsLike = Hints | Mapping[str, Any] | None


def _fingerprint_channel(samples_path: str | None, notes: list[str]) -> list[ChannelFactory]:
    from .channels.fingerprint import FingerprintChannel
    from .samples import resolve_library

    if samples_path is None:
        notes.append("fingerprint channel off")
        return []
    path = resolve_library(None if samples_path == "default" else samples_path)
    if path is None:
        notes.append("no sample library: running without the fingerprint channel")
        return []
    return [FingerprintChannel(path)]


def _asr_channel(config: ClassifierConfig, notes: list[str]) -> list[ChannelFactory]:
    """The speech channel as configured; without a model it is off (or an error if required)."""
    from .errors import ModelError
    from .model_store import fetch_command, resolve_asr_model

    if config.asr_model is None:
        if config.asr_required:
            raise ModelError("the speech channel is required but was switched off")
        notes.append("speech channel off")
        return []
    path = resolve_asr_model(None if config.asr_model == "auto" else config.asr_model)
    if path is None:
        message = (
            f"no speech model: running without the speech channel (fetch one with "
            f"'{fetch_command()}' or pass --asr-model PATH)"
        )
        if config.asr_required:
            raise ModelError(message.replace("running without", "cannot run without"))
        notes.append(message)
        return []
    from .channels.asr import VoskChannel
    from .lexicon import Lexicon

    channel = VoskChannel(path, Lexicon.load(config.lexicon_dirs), grammar=config.asr_grammar)
    notes.extend(channel.notes)
    return [channel]


def _model_channel(model_path: str | None, notes: list[str]) -> list[ChannelFactory]:
    """The trained-model channel as configured; the shipped default may be absent."""
    from .channels.model import ModelChannel
    from .model import DEFAULT_MODEL, MODEL_ENV

    if model_path is None:
        notes.append("model channel off: running without the trained model")
        return []
    if model_path == "default":
        if not os.environ.get(MODEL_ENV) and not DEFAULT_MODEL.is_file():
            notes.append(f"model channel off: the shipped model {DEFAULT_MODEL} is not installed")
            return []
        return [ModelChannel()]  # $AUDIO_CLASSIFIER_MODEL, else the shipped model
    return [ModelChannel(model_path)]


def _confidence_map(
    config: ClassifierConfig, channels: Sequence[ChannelFactory], notes: list[str]
) -> ConfidenceMap | None:
    """The configured confidence map. The shipped one belongs to the shipped model: it is
    used only when the channels loaded are the default set with that model."""
    from .channels.model import ModelChannel
    from .model import DEFAULT_CONFIDENCE_MAP, DEFAULT_MODEL

    choice = config.confidence_map
    if choice is None:
        return None
    if choice != "default":
        return ConfidenceMap.load(choice)
    shipped = any(
        isinstance(c, ModelChannel) and c.model.path.resolve() == DEFAULT_MODEL.resolve() for c in channels
    )
    if not shipped:
        notes.append("confidence is the decision score: the shipped confidence map is for the shipped model")
        return None
    if not DEFAULT_CONFIDENCE_MAP.is_file():
        notes.append(f"confidence is the decision score: {DEFAULT_CONFIDENCE_MAP} is not installed")
        return None
    return ConfidenceMap.load(DEFAULT_CONFIDENCE_MAP)


class Classifier:
    """Loads channels and configuration once; opens sessions; classifies files and arrays.

    Thread-safe: it holds only read-only shared resources, and every call or session gets
    its own state.
    """

    def __init__(
        self,
        config: ClassifierConfig | None = None,
        *,
        channels: Sequence[ChannelFactory] | None = None,
    ) -> None:
        self.config = config or ClassifierConfig()
        notes: list[str] = []
        if channels is None:
            channels = [
                ToneChannel(),
                *_model_channel(self.config.model_path, notes),
                *_asr_channel(self.config, notes),
                *_fingerprint_channel(self.config.samples_path, notes),
            ]
        self.channels: tuple[ChannelFactory, ...] = tuple(channels)
        self.confidence_map = _confidence_map(self.config, self.channels, notes)
        """Decision scores to confidences (``None``: confidence is the score)."""
        self.act_threshold = self.config.decision.act_threshold_for(
            calibrated=self.confidence_map is not None
        )
        """The confidence a destructive action needs, as configured or by default for the
        confidence in use (``DecisionConfig.act_threshold_for``)."""
        grid = next((g for c in self.channels if (g := c.info.evidence_grid)), None)
        self._block_phase = grid[0] if grid else 0
        self.notes: tuple[str, ...] = tuple(notes)
        """Facts about this classifier worth reporting once per run (missing channels...)."""

    def settings(self) -> dict[str, Any]:
        """What decides this classifier's records, as JSON-ready data: its configuration,
        what each channel loaded (``ChannelInfo.source``), the confidence map and the
        package version. Equal settings give equal records for the same audio; a run
        resumed into an existing output checks them (``evaluate``)."""
        from . import __version__

        return {
            "version": __version__,
            "config": dataclasses.asdict(self.config),
            "channels": {c.info.name: c.info.source for c in self.channels},
            "confidence_map": dataclasses.asdict(self.confidence_map) if self.confidence_map else None,
        }

    @property
    def channel_names(self) -> tuple[str, ...]:
        return tuple(c.info.name for c in self.channels)

    def open_session(
        self,
        sample_rate: int = SAMPLE_RATE,
        encoding: str = "pcm_s16le",
        hints: HintsLike = None,
        *,
        channels: int = 1,
        channel: int | None = None,
    ) -> Session:
        """A streaming session for one call.

        *encoding* is one of ``audio.ENCODINGS`` (bytes chunks; ``float32`` also takes numpy
        arrays), *sample_rate* in Hz, *channels* interleaved, *channel* the one to analyse
        (``None`` mixes them). *hints* are signalling facts (``sip_status``, ``q850_cause``).
        """
        converter = StreamConverter(sample_rate, encoding, channels, channel)
        parsed = hints if isinstance(hints, Hints) else Hints.from_mapping(hints)
        streams = [factory.open() for factory in self.channels]
        return Session(
            streams,
            self.config,
            converter,
            parsed.evidence(),
            block_phase=self._block_phase,
            confidence_map=self.confidence_map,
        )

    def warm_up(self) -> None:
        """Run two seconds of a tone through a session, so the first call does not pay for
        what channels load on first use (scipy's FFT module alone takes about 0.5 s to
        import) or for onnxruntime's first run. A server calls this before it is ready."""
        t = np.arange(WARM_UP_S * SAMPLE_RATE) / SAMPLE_RATE
        session = self.open_session(SAMPLE_RATE, "float32")
        session.feed((0.1 * np.sin(2 * np.pi * 450.0 * t)).astype(np.float32))
        session.close()

    def classify_array(
        self,
        samples: np.ndarray,
        sample_rate: int,
        *,
        hints: HintsLike = None,
        channel: int | None = None,
    ) -> Decision:
        """Classify a whole recording held in memory: shape ``(n,)`` or ``(n, channels)``,
        float in [-1, 1] or integer PCM."""
        array = np.asarray(samples)
        if array.ndim not in (1, 2):
            raise UnsupportedEncodingError(
                f"samples must be 1-D or 2-D (frames, channels), got {array.ndim}-D"
            )
        if array.size == 0:
            raise EmptyAudioError("the audio array is empty")
        n_channels = 1 if array.ndim == 1 else array.shape[1]
        session = self.open_session(sample_rate, "float32", hints, channels=n_channels, channel=channel)
        step = int(sample_rate)  # one second at a time keeps conversion memory small
        for start in range(0, len(array), step):
            session.feed(array[start : start + step])
            if not session.wants_audio:
                break
        return session.close()

    def classify_file(
        self,
        path: str | os.PathLike[str],
        *,
        hints: HintsLike = None,
        channel: int | None = None,
        raw_encoding: str | None = None,
        raw_sample_rate: int = SAMPLE_RATE,
        on_update: Callable[[Decision], None] | None = None,
    ) -> Decision:
        """Classify an audio file (see :func:`audio.open_file` for the formats).

        Reading stops as soon as the decision is final or ``max_duration_s`` is reached.
        *on_update* is called with every decision the session emits, interim and final, in
        order (see ``ClassifierConfig.update_min_delta``).
        """
        info, chunks = open_file(path, raw_encoding=raw_encoding, raw_sample_rate=raw_sample_rate)
        session = self.open_session(
            info.sample_rate, info.stream_encoding, hints, channels=info.channels, channel=channel
        )
        session.source_duration_s = info.duration_s
        try:
            for chunk in chunks:
                updates = session.feed(chunk)
                if on_update is not None:
                    for update in updates:
                        on_update(update)
                if not session.wants_audio:
                    break
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        if (
            info.declared_frames is not None
            and info.frames is not None
            and info.declared_frames > info.frames
        ):
            rate = info.sample_rate
            session.add_note(
                f"the file ends before its header says: {info.frames / rate:.1f} s of "
                f"{info.declared_frames / rate:.1f} s (cut short, or still being written)"
            )
        final_already = session.final
        decision = session.close()
        if on_update is not None and not final_already:
            on_update(decision)
        return decision
