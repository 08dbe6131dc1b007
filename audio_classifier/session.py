"""A streaming classification session: audio chunks in, decisions out.

Batch classification is a session fed a file (see ``classifier.py``), so this is the one
code path. Audio is analysed in fixed blocks at absolute stream positions; the decision
is re-evaluated after each block, which makes results independent of how the caller
chunks the audio. Blocks end where the model's windows end (``block_phase``), so a
window is judged as soon as its last sample arrives. When a feed completes several blocks
at once (a file is read seconds at a time), the channels see them all first
(``ChannelStream.prepare``) and batch their work; each block still reports exactly what it
would have on its own.
"""

from __future__ import annotations

import numpy as np

from .audio import SAMPLE_RATE, StreamConverter
from .calibration import ConfidenceMap
from .channels import LATEST_PER_TIER, ChannelInfo, ChannelStream
from .channels.signalling import SIGNALLING_INFO
from .config import ClassifierConfig
from .decision import TIMED_HOLDS, Memory, Verdict, decide
from .errors import EmptyAudioError, SessionClosedError
from .evidence import Decision, Evidence
from .labels import LABELS, UNKNOWN, withheld_action, withheld_note


class Session:
    """One call's classification state. Not thread-safe: use one session per call.

    Create with :meth:`Classifier.open_session`; call :meth:`feed` with chunks of any size
    and :meth:`close` at the end of the call.
    """

    def __init__(
        self,
        streams: list[ChannelStream],
        config: ClassifierConfig,
        converter: StreamConverter,
        initial_evidence: list[Evidence] | None = None,
        block_phase: int = 0,
        confidence_map: ConfidenceMap | None = None,
    ) -> None:
        """*block_phase* (samples): blocks end at ``block_phase + k * block`` of the stream;
        *confidence_map* turns decision scores into confidences (``None``: they are equal)."""
        self._confidence_map = confidence_map
        self._act_threshold = config.decision.act_threshold_for(calibrated=confidence_map is not None)
        self._streams = streams
        self._config = config
        self._converter = converter
        self._block = int(round(config.block_s * SAMPLE_RATE))
        self._boundary = block_phase % self._block or self._block  # where the current block ends
        self._max_samples = int(round(config.max_duration_s * SAMPLE_RATE))
        self._buffer = np.zeros(0, dtype=np.float32)
        self._waiting: list[np.ndarray] = []  # decoded input-rate audio not yet resampled
        self._waiting_frames = 0
        self._consumed = 0
        self._infos: dict[str, ChannelInfo] = {SIGNALLING_INFO.name: SIGNALLING_INFO}
        self._infos.update({s.info.name: s.info for s in streams})
        self._latest_per_tier = {s.info.name for s in streams if s.info.claims == LATEST_PER_TIER}
        self._evidence: dict[tuple[str, str], Evidence] = {}
        self._add(initial_evidence or [])
        self._last_emitted: Decision | None = None
        self._held_for_time = False  # the last verdict waits for time to pass (decision.TIMED_HOLDS)
        self._memory = Memory()
        self._final: Decision | None = None
        self._truncated = False
        self.source_duration_s: float | None = None
        """The whole input's length, when the caller knows it (a file): the note on
        truncation then says how much was left unheard."""
        self._closed = False
        self._notes: list[str] = []

    # -- state -------------------------------------------------------------------------------

    @property
    def final(self) -> bool:
        """True once the decision is final (early, or because the session closed)."""
        return self._final is not None

    @property
    def wants_audio(self) -> bool:
        """False once more audio would not be analysed (final, or past the duration limit)."""
        return not (self._closed or self._final is not None or self._truncated)

    @property
    def analysed_s(self) -> float:
        return self._consumed / SAMPLE_RATE

    @property
    def decision(self) -> Decision:
        """The current decision (final or interim)."""
        return self._final or self._decision(self._verdict(ended=False), final=False)

    def add_note(self, note: str) -> None:
        """Attach a note to the decision (for example what the caller truncated)."""
        if note not in self._notes:
            self._notes.append(note)

    # -- streaming ---------------------------------------------------------------------------

    def feed(self, chunk: bytes | bytearray | memoryview | np.ndarray) -> list[Decision]:
        """Add audio; return the decisions it produced (interim updates, then the final one).

        Audio after the decision became final, or past ``max_duration_s``, is ignored.
        """
        if self._closed:
            raise SessionClosedError("this session is closed; open a new one for another call")
        if not self.wants_audio:
            return []
        decoded = self._converter.decode(chunk)  # never the caller's array: it may wait past this call
        if len(decoded):
            self._waiting.append(decoded)
            self._waiting_frames += len(decoded)
        # Decoded audio waits at its input rate until it completes the next block (or passes
        # the duration limit): a live stream's 20 ms chunks are resampled once per block, not
        # one by one (each call costs more than its arithmetic), and every block is analysed
        # on the same call as if each chunk had been resampled as it came.
        due = min(self._boundary, self._max_samples + 1) - self._consumed - len(self._buffer)
        if self._converter.ready_after(self._waiting_frames) < due:
            return []
        return self._analyse(self._resample_waiting(), end=False)

    def close(self) -> Decision:
        """End the call and return the final decision. Idempotent."""
        if self._closed:
            assert self._final is not None
            return self._final
        if self._final is None:
            tail = np.concatenate([self._resample_waiting(), self._converter.flush()])
            if self._converter.frames_in == 0:
                self._closed = True
                raise EmptyAudioError("the stream ended without any audio")
            self._analyse(tail, end=True)
        self._closed = True
        if self._final is None:
            for stream in self._streams:
                self._add(stream.finish())
            self._final = self._decision(self._verdict(ended=True), final=True)
        return self._final

    # -- internals ---------------------------------------------------------------------------

    def _resample_waiting(self) -> np.ndarray:
        waiting = self._waiting
        self._waiting, self._waiting_frames = [], 0
        if not waiting:
            return np.zeros(0, dtype=np.float32)
        return self._converter.resample(waiting[0] if len(waiting) == 1 else np.concatenate(waiting))

    def _analyse(self, samples: np.ndarray, end: bool) -> list[Decision]:
        room = self._max_samples - self._consumed - len(self._buffer)
        if len(samples) > room:
            samples = samples[: max(room, 0)]
            self._truncated = True
            whole = f"{self.source_duration_s:.1f} s" if self.source_duration_s else "audio"
            self.add_note(f"analysed only the first {self._config.max_duration_s:g} s of {whole}")
        self._buffer = np.concatenate([self._buffer, samples]) if len(self._buffer) else samples
        ahead = self._blocks_in_hand(end)
        if ahead > self._block:  # several blocks at once (a file): channels may batch them
            for stream in self._streams:
                prepare = getattr(stream, "prepare", None)  # optional for channels written before it
                if prepare is not None:
                    prepare(self._buffer[:ahead], self._consumed)
        updates: list[Decision] = []
        position = 0
        while True:
            need = self._boundary - self._consumed
            if len(self._buffer) - position >= need:
                self._boundary += self._block
            elif not (end and position < len(self._buffer)):
                break
            block = self._buffer[position : position + need]
            position += len(block)
            new: list[Evidence] = []
            for stream in self._streams:
                new += stream.process(block, self._consumed)
            self._consumed += len(block)
            if new or self._held_for_time:
                self._add(new)
                update = self._maybe_update()
                if update is not None:
                    updates.append(update)
                    if update.final:
                        break
        self._buffer = self._buffer[position:] if self._final is None else self._buffer[:0]
        return updates

    def _blocks_in_hand(self, end: bool) -> int:
        """Samples of the buffer the block loop will analyse now (unless a decision ends
        it first): its complete blocks, and at the end of the stream everything."""
        if end:
            return len(self._buffer)
        need = self._boundary - self._consumed
        if len(self._buffer) < need:
            return 0
        return need + (len(self._buffer) - need) // self._block * self._block

    def _add(self, evidence: list[Evidence]) -> None:
        """Keep each channel's standing claims by its claim policy (``ChannelInfo.claims``):
        the strongest per label (an equal claim with a later end extends its span), or the
        latest per tier."""
        for item in evidence:
            if item.channel in self._latest_per_tier:
                tier = LABELS[item.label].tier
                for key in [k for k in self._evidence if k[0] == item.channel and LABELS[k[1]].tier == tier]:
                    del self._evidence[key]
                self._evidence[item.key] = item
                continue
            current = self._evidence.get(item.key)
            if current is None or item.score >= current.score:
                self._evidence[item.key] = item

    def _maybe_update(self) -> Decision | None:
        verdict = self._verdict(ended=False)
        threshold = self._config.decision.decision_threshold
        # a verdict that would be final but for a timed hold is worth asking again each block
        # (without early decisions, any threshold's replay may need the moment it is released)
        early = self._config.early_decision
        self._held_for_time = verdict.hold in TIMED_HOLDS and (not early or verdict.confidence >= threshold)
        if self._config.early_decision and verdict.confidence >= threshold and verdict.hold is None:
            self._final = self._decision(verdict, final=True)
            self._last_emitted = self._final
            return self._final
        candidate = self._decision(verdict, final=False)
        last = self._last_emitted
        if (
            last is None
            or last.label != candidate.label
            or last.hold != candidate.hold
            or abs(last.confidence - candidate.confidence) >= self._config.update_min_delta
        ):
            self._last_emitted = candidate
            return candidate
        return None

    def _verdict(self, ended: bool) -> Verdict:
        pending = [p for stream in self._streams if (p := stream.pending()) is not None]
        return decide(
            self._evidence.values(),
            self._infos,
            self._config.decision,
            now_s=self.analysed_s,
            ended=ended,
            pending=pending,
            memory=self._memory,
        )

    def _decision(self, verdict: Verdict, final: bool) -> Decision:
        evidence = sorted(self._evidence.values(), key=lambda e: (-e.score, e.start_s, e.channel))
        notes = list(self._notes)
        if final and verdict.label == UNKNOWN and not evidence:
            notes.append("no channel recognised anything in the audio")
        act_threshold = self._act_threshold
        score = verdict.confidence
        confidence = score if self._confidence_map is None else self._confidence_map(score)
        withheld = withheld_action(verdict.label, confidence, act_threshold)
        if withheld:
            notes.append(withheld_note(withheld, confidence, act_threshold))
        return Decision(
            label=verdict.label,
            confidence=confidence,
            score=score,
            final=final,
            decided_at_s=self.analysed_s if final else None,
            analysed_s=self.analysed_s,
            evidence=tuple(evidence),
            truncated=self._truncated,
            notes=tuple(notes),
            hold=None if final else verdict.hold,
            withheld_action=withheld,
            transcript={s.info.name: text for s in self._streams if (text := _heard(s))} or None,
        )


def _heard(stream: ChannelStream) -> dict[str, str] | None:
    """``stream.heard()``, optional for channels written before it."""
    heard = getattr(stream, "heard", None)
    return heard() if heard is not None else None
