"""The public entry point: a :class:`Classifier` shared by every call in a process."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .audio import SAMPLE_RATE, StreamConverter, open_file
from .channels import ChannelFactory, ToneChannel
from .config import ClassifierConfig
from .errors import EmptyAudioError, UnsupportedEncodingError
from .evidence import Decision
from .hints import Hints
from .session import Session

HintsLike = Hints | Mapping[str, Any] | None


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
        self.channels: tuple[ChannelFactory, ...] = (
            tuple(channels) if channels is not None else (ToneChannel(),)
        )
        self.notes: tuple[str, ...] = ()
        """Facts about this classifier worth reporting once per run (missing channels...)."""

    @property
    def channel_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.channels)

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
        return Session(streams, self.config, converter, parsed.evidence())

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
    ) -> Decision:
        """Classify an audio file (see :func:`audio.open_file` for the formats).

        Reading stops as soon as the decision is final or ``max_duration_s`` is reached.
        """
        info, chunks = open_file(path, raw_encoding=raw_encoding, raw_sample_rate=raw_sample_rate)
        encoding = info.encoding if info.encoding in ("pcm_s16le", "mulaw", "alaw") else "float32"
        session = self.open_session(
            info.sample_rate, encoding, hints, channels=info.channels, channel=channel
        )
        try:
            for chunk in chunks:
                session.feed(chunk)
                if not session.wants_audio:
                    break
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        if info.duration_s is not None and info.duration_s > self.config.max_duration_s:
            session.add_note(
                f"analysed only the first {self.config.max_duration_s:g} s of {info.duration_s:.1f} s"
            )
        return session.close()
