"""Audio input: every format converted, at the edge, to float32 mono at ``SAMPLE_RATE``.

Two entry points share one conversion path:

- :class:`StreamConverter` takes chunks of a stream (bytes in a telephony encoding, or
  float arrays) of any size and boundary and yields internal-rate samples.
- :func:`read_file_chunks` opens a file (WAV, FLAC, OGG and whatever libsndfile reads; raw
  PCM or G.711 by extension) and yields its chunks for a :class:`StreamConverter`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import g711
from .errors import (
    EmptyAudioError,
    InvalidSamplesError,
    UnreadableAudioError,
    UnsupportedEncodingError,
)
from .resample import Resampler

SAMPLE_RATE = 8000
"""The one internal sample rate (Hz): telephony's narrowband rate."""

ENCODINGS = ("pcm_s16le", "mulaw", "alaw", "float32")
"""Stream encodings: 16-bit little-endian PCM, G.711 mu-law and A-law (bytes), and float32
samples (bytes or numpy arrays, which may also be any numeric dtype)."""

ENCODING_ALIASES = {
    "pcm": "pcm_s16le",
    "s16le": "pcm_s16le",
    "l16": "pcm_s16le",
    "linear16": "pcm_s16le",
    "slin": "pcm_s16le",
    "ulaw": "mulaw",
    "mu-law": "mulaw",
    "pcmu": "mulaw",
    "audio/x-mulaw": "mulaw",
    "a-law": "alaw",
    "pcma": "alaw",
    "f32le": "float32",
}

RAW_EXTENSIONS = {
    ".raw": "pcm_s16le",
    ".pcm": "pcm_s16le",
    ".s16": "pcm_s16le",
    ".sln": "pcm_s16le",
    ".ul": "mulaw",
    ".ulaw": "mulaw",
    ".mulaw": "mulaw",
    ".mu": "mulaw",
    ".al": "alaw",
    ".alaw": "alaw",
}
"""Headerless files recognised by extension, and their encoding."""

AUDIO_EXTENSIONS = frozenset(
    {".wav", ".flac", ".ogg", ".oga", ".opus", ".au", ".snd", ".aif", ".aiff", ".caf", ".w64"}
    | set(RAW_EXTENSIONS)
)
"""Extensions picked up when a directory is classified."""

MIN_SAMPLE_RATE = 4000
MAX_SAMPLE_RATE = 384000
MAX_CHANNELS = 32

READ_BLOCK_S = 2.0
"""Files are read in blocks of this many seconds, so a long file is never held whole. The
session hands the channels a read's blocks at once (``ChannelStream.prepare``) and they
batch their numpy work over it: 8 blocks per call cost about a third of 8 calls. Longer
reads gain little more and analyse further past an early decision."""

_BYTES_PER_SAMPLE = {"pcm_s16le": 2, "mulaw": 1, "alaw": 1, "float32": 4}


def frames_of(samples: np.ndarray, frame_len: int, hop: int, n: int) -> np.ndarray:
    """The first *n* frames of *samples*, ``(n, frame_len)``, every *hop* samples: a read-only
    view (no copy). ``sliding_window_view`` does the same with several times the overhead,
    which counts on the per-chunk path of a stream."""
    step = samples.strides[0]
    return np.lib.stride_tricks.as_strided(
        samples, shape=(n, frame_len), strides=(hop * step, step), writeable=False
    )


def normalise_encoding(encoding: str) -> str:
    """Return the canonical name of *encoding*; raise if it is not supported."""
    name = encoding.strip().lower()
    name = ENCODING_ALIASES.get(name, name)
    if name not in ENCODINGS:
        raise UnsupportedEncodingError(
            f"unsupported encoding {encoding!r}; supported: {', '.join(ENCODINGS)}"
        )
    return name


def check_rate_and_channels(sample_rate: int, channels: int, channel: int | None) -> None:
    """Validate a stream's layout; messages give the allowed ranges."""
    if not isinstance(sample_rate, (int, np.integer)) or not (
        MIN_SAMPLE_RATE <= sample_rate <= MAX_SAMPLE_RATE
    ):
        raise UnsupportedEncodingError(
            f"sample rate {sample_rate!r} Hz outside {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz"
        )
    if not 1 <= channels <= MAX_CHANNELS:
        raise UnsupportedEncodingError(f"channel count {channels} outside 1..{MAX_CHANNELS}")
    if channel is not None and not 0 <= channel < channels:
        raise UnsupportedEncodingError(
            f"channel {channel} does not exist in {channels}-channel audio "
            f"(valid: 0..{channels - 1}, or none to mix)"
        )


MAX_FLOAT_AMPLITUDE = 64.0
"""Float audio is nominally within -1..1; a sample beyond this (36 dB over full scale) means
the input is not audio or has the wrong scale, and is refused rather than classified."""


class StreamConverter:
    """Turn chunks in one encoding and layout into float32 mono at ``SAMPLE_RATE``.

    Byte chunks may split samples or frames anywhere; the remainder waits for the next
    chunk. ``channel`` picks one channel of multi-channel audio; ``None`` mixes them.
    """

    def __init__(
        self,
        sample_rate: int,
        encoding: str = "pcm_s16le",
        channels: int = 1,
        channel: int | None = None,
    ) -> None:
        self.encoding = normalise_encoding(encoding)
        check_rate_and_channels(sample_rate, channels, channel)
        self.sample_rate = int(sample_rate)
        self.channels = channels
        self.channel = channel
        self._frame_bytes = _BYTES_PER_SAMPLE[self.encoding] * channels
        self._pending = b""
        self._resampler = Resampler(self.sample_rate, SAMPLE_RATE)
        self.frames_in = 0
        """Input frames (samples per channel) received so far."""

    def _decode_bytes(self, data: bytes) -> np.ndarray:
        data = self._pending + data
        usable = len(data) - len(data) % self._frame_bytes
        self._pending = data[usable:]
        raw = data[:usable]
        if self.encoding == "pcm_s16le":
            return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
        if self.encoding == "float32":
            return np.frombuffer(raw, dtype="<f4").astype(np.float32)
        return g711.decode(raw, self.encoding)

    def _from_array(self, array: np.ndarray) -> np.ndarray:
        if array.ndim == 2:
            if array.shape[1] != self.channels:
                raise UnsupportedEncodingError(
                    f"chunk has {array.shape[1]} channels, the stream was opened with {self.channels}"
                )
            array = array.reshape(-1)
        elif array.ndim != 1:
            raise UnsupportedEncodingError(f"audio arrays must be 1-D or 2-D, got {array.ndim}-D")
        if array.dtype.kind == "f":
            return array.astype(np.float32)  # a copy: callers may reuse their array after the call
        if array.dtype.kind in "iu":
            info = np.iinfo(array.dtype)
            scale = float(info.max) + 1.0
            offset = 0.0 if info.min < 0 else scale / 2
            return ((array.astype(np.float64) - offset) / (scale - offset)).astype(np.float32)
        raise UnsupportedEncodingError(f"audio arrays must be numeric, got dtype {array.dtype}")

    def push(self, chunk: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
        """Decode one chunk; return the internal-rate samples it completes."""
        return self.resample(self.decode(chunk))

    def resample(self, mono: np.ndarray) -> np.ndarray:
        """Decoded input-rate samples (``decode``) -> the internal-rate samples they complete."""
        return self._resampler.process(mono)

    def ready_after(self, frames: int) -> int:
        """How many internal-rate samples ``resample`` would return for *frames* more input
        frames, without computing them."""
        return self._resampler.ready_after(frames)

    def decode(self, chunk: bytes | bytearray | memoryview | np.ndarray) -> np.ndarray:
        """Decode one chunk to float32 mono at the input rate, not yet resampled (``resample``):
        a new array, never a view of the caller's."""
        if isinstance(chunk, np.ndarray):
            floats = chunk.dtype.kind == "f"
            interleaved = self._from_array(chunk)
            if len(interleaved) % self.channels:
                raise UnsupportedEncodingError(
                    f"array chunk of {len(interleaved)} samples is not a whole number of "
                    f"{self.channels}-channel frames"
                )
        elif isinstance(chunk, (bytes, bytearray, memoryview)):
            floats = self.encoding == "float32"
            interleaved = self._decode_bytes(bytes(chunk))
        else:
            raise UnsupportedEncodingError(
                f"audio chunks must be bytes or numpy arrays, got {type(chunk).__name__}"
            )
        if floats and len(interleaved):  # integer and G.711 codes are always finite and in range
            if not np.isfinite(interleaved).all():
                bad = int(np.count_nonzero(~np.isfinite(interleaved)))
                raise InvalidSamplesError(f"audio contains {bad} NaN or infinite sample(s)")
            peak = float(np.max(np.abs(interleaved)))
            if peak > MAX_FLOAT_AMPLITUDE:
                raise InvalidSamplesError(
                    f"float samples reach {peak:.3g}: float audio lies within -1..1, so this is not "
                    f"audio or has the wrong scale (integer values stored as floats?)"
                )
        mono = self._to_mono(interleaved)
        self.frames_in += len(mono)
        return mono

    def _to_mono(self, interleaved: np.ndarray) -> np.ndarray:
        if self.channels == 1:
            return interleaved
        frames = interleaved.reshape(-1, self.channels)
        if self.channel is not None:
            return np.ascontiguousarray(frames[:, self.channel])
        return frames.mean(axis=1, dtype=np.float32)

    def flush(self) -> np.ndarray:
        """End of stream: the resampler's tail. A dangling partial frame is dropped."""
        self._pending = b""
        return self._resampler.flush()


@dataclass(frozen=True)
class FileInfo:
    """What opening a file told us about it."""

    sample_rate: int
    channels: int
    encoding: str
    frames: int | None
    """Frames (samples per channel) in the file, when the container says."""
    declared_frames: int | None = None
    """Frames the header promises, where that can differ from what the file holds (a WAV
    cut short keeps the header of the whole)."""

    @property
    def duration_s(self) -> float | None:
        return None if self.frames is None else self.frames / self.sample_rate

    @property
    def stream_encoding(self) -> str:
        """How this file's chunks are fed to a :class:`StreamConverter`: raw files give bytes
        in their encoding, containers give float32 arrays."""
        return self.encoding if self.encoding in ("pcm_s16le", "mulaw", "alaw") else "float32"

    def converter(self, channel: int | None = None) -> StreamConverter:
        """A converter for this file's chunks (see :func:`open_file`)."""
        return StreamConverter(self.sample_rate, self.stream_encoding, self.channels, channel)


def raw_encoding_for(path: str | os.PathLike[str]) -> str | None:
    """The encoding of a headerless file, judged by extension; ``None`` for containers."""
    return RAW_EXTENSIONS.get(Path(path).suffix.lower())


def open_file(
    path: str | os.PathLike[str],
    *,
    raw_encoding: str | None = None,
    raw_sample_rate: int = SAMPLE_RATE,
    raw_channels: int = 1,
) -> tuple[FileInfo, Iterator[bytes | np.ndarray]]:
    """Open an audio file; return its layout and an iterator over its chunks.

    Containers are read with soundfile (libsndfile). A file whose extension is in
    ``RAW_EXTENSIONS``, or any file when *raw_encoding* is given, is read as headerless
    audio at *raw_sample_rate*. Raises :class:`UnreadableAudioError` or
    :class:`EmptyAudioError` with the reason.
    """
    p = Path(path)
    if not p.exists():
        dangling = p.is_symlink()
        raise UnreadableAudioError(f"{'a dangling symbolic link' if dangling else 'no such file'}: {p}")
    if p.is_dir():
        raise UnreadableAudioError(f"is a directory, not an audio file: {p}")
    if not p.is_file():
        raise UnreadableAudioError(f"not a regular file (a FIFO, socket or device): {p}")
    size = p.stat().st_size
    if size == 0:
        raise EmptyAudioError(f"file is empty (0 bytes): {p}")
    encoding = normalise_encoding(raw_encoding) if raw_encoding else raw_encoding_for(p)
    if encoding is not None:
        check_rate_and_channels(raw_sample_rate, raw_channels, None)
        frame_bytes = _BYTES_PER_SAMPLE[encoding] * raw_channels
        if size < frame_bytes:
            raise EmptyAudioError(f"file holds less than one sample frame ({size} bytes): {p}")
        info = FileInfo(raw_sample_rate, raw_channels, encoding, size // frame_bytes)
        block = max(frame_bytes, int(READ_BLOCK_S * raw_sample_rate) * frame_bytes)
        return info, _iter_raw(p, block)
    return _open_container(p)


def _iter_raw(path: Path, block_bytes: int) -> Iterator[bytes]:
    with open(path, "rb") as handle:
        while chunk := handle.read(block_bytes):
            yield chunk


def _open_container(path: Path) -> tuple[FileInfo, Iterator[np.ndarray]]:
    import soundfile as sf

    try:
        handle = sf.SoundFile(str(path))
    except sf.LibsndfileError as exc:
        detail = str(exc).split(": ", 1)[-1] if ": " in str(exc) else str(exc)
        raise UnreadableAudioError(
            f"cannot decode {path}: {detail} (not audio, truncated, or an unsupported codec; "
            f"headerless audio needs one of the extensions {', '.join(sorted(RAW_EXTENSIONS))} "
            f"or an explicit raw encoding)"
        ) from None
    except (RuntimeError, OSError) as exc:
        raise UnreadableAudioError(f"cannot open {path}: {exc}") from None
    frames = handle.frames if handle.seekable() else None
    if frames == 0:
        handle.close()
        raise EmptyAudioError(f"file has a valid header but no audio frames: {path}")
    declared = _wav_declared_frames(path) if handle.format in ("WAV", "WAVEX") else None
    info = FileInfo(handle.samplerate, handle.channels, f"{handle.format}/{handle.subtype}", frames, declared)
    return info, _iter_container(handle, path)


WAV_UNKNOWN_SIZES = (0, 0xFFFFFFFF)
"""``data`` chunk sizes that a recorder writes while it does not yet know the length."""


def _wav_declared_frames(path: Path) -> int | None:
    """The frames a RIFF/WAVE header's ``data`` chunk declares (``None``: no usable header)."""
    import struct

    try:
        with open(path, "rb") as handle:
            if handle.read(12)[8:12] != b"WAVE":
                return None
            block_align = None
            while len(header := handle.read(8)) == 8:
                chunk, size = struct.unpack("<4sI", header)
                if chunk == b"fmt ":
                    block_align = struct.unpack("<HHIIH", handle.read(14))[4]
                    handle.seek(size - 14 + (size & 1), os.SEEK_CUR)
                elif chunk == b"data":
                    if not block_align or size in WAV_UNKNOWN_SIZES:
                        return None
                    return size // block_align
                else:
                    handle.seek(size + (size & 1), os.SEEK_CUR)
    except (OSError, struct.error):
        return None
    return None


def _iter_container(handle, path: Path) -> Iterator[np.ndarray]:
    import soundfile as sf

    block = max(1, int(READ_BLOCK_S * handle.samplerate))
    with handle:
        while True:
            try:
                data = handle.read(block, dtype="float32", always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise UnreadableAudioError(f"decoding failed inside {path}: {exc}") from None
            if len(data) == 0:
                return
            yield data
