"""Speech recognition channel: Vosk, constrained to the prompt lexicon where it can be.

One ``vosk.Model`` per process (the :class:`VoskChannel` factory, shared by all sessions);
one ``KaldiRecognizer`` per call (a recogniser is not thread-safe, and long-lived ones are
reported to grow). Audio is upsampled from 8 kHz to the model's rate (small models refuse
8 kHz). Partial results are matched against the lexicon as they arrive, so an announcement
can be decided before it ends; the transcript and the matched phrase go into the evidence.

Vosk pitfalls handled here: grammar words must be in the model's
vocabulary (missing ones are dropped with only a log line: ``lexicon check`` lists them);
grammar JSON must keep non-ASCII text as is (Vosk does not decode ``\\uXXXX`` escapes);
grammar mode needs a dynamic graph (``HCLr.fst`` + ``Gr.fst``), other models decode freely.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from ..audio import SAMPLE_RATE
from ..errors import ModelError
from ..evidence import Evidence
from ..lexicon import EXACT_SCORE, FILLER, ONE_EDIT_SCORE, Lexicon, segment
from ..resample import Resampler
from .base import ChannelInfo

CHANNEL = "asr"
UNKNOWN_WORD = "[unk]"
DEFAULT_MODEL_RATE = 16000
GRAMMAR_MODES = ("auto", "on", "off")
"""auto: grammar when the model has a dynamic graph and an [unk] word; on: grammar whenever
the graph allows; off: free recognition."""
VOSK_LOG_LEVEL = -1
"""Vosk/Kaldi log level set when a model loads: -1 keeps only errors."""


def model_sample_rate(path: Path) -> int:
    """The rate the model's features expect (``conf/mfcc.conf``), 16 kHz by default."""
    conf = path / "conf" / "mfcc.conf"
    if conf.is_file():
        for line in conf.read_text().splitlines():
            if line.strip().startswith("--sample-frequency="):
                return int(float(line.split("=", 1)[1]))
    return DEFAULT_MODEL_RATE


def check_model_dir(path: Path) -> None:
    if not path.is_dir():
        raise ModelError(f"speech model folder not found: {path}")
    if not (path / "am").is_dir() and not (path / "final.mdl").is_file():
        raise ModelError(
            f"{path} does not look like a Vosk model (no am/ folder): point --asr-model at the "
            f"unpacked model folder, or run 'audio-classifier models fetch NAME'"
        )


INFO = ChannelInfo(CHANNEL, cost="heavy")
"""Speech recognition costs seconds of CPU per call; its claims are located where the
utterance that matched began and ended."""


class VoskChannel:
    """Process-wide speech recognition resources: the model, its vocabulary, the grammar."""

    info = INFO

    def __init__(
        self, path: str | os.PathLike[str], lexicon: Lexicon | None = None, *, grammar: str = "auto"
    ) -> None:
        self.path = Path(path)
        check_model_dir(self.path)
        self.info = replace(INFO, source=f"{self.path} (grammar {grammar})")
        import vosk

        vosk.SetLogLevel(VOSK_LOG_LEVEL)
        try:
            self.model = vosk.Model(str(self.path))
        except Exception as exc:  # noqa: BLE001 - vosk raises a bare Exception on failure
            raise ModelError(f"Vosk cannot load the model in {self.path}: {exc}") from None
        self._vosk = vosk
        self.sample_rate = model_sample_rate(self.path)
        self.lexicon = lexicon or Lexicon.load()
        self.notes: list[str] = []
        graph = self.path / "graph"
        self.dynamic_graph = (graph / "HCLr.fst").is_file() and (graph / "Gr.fst").is_file()
        if grammar not in GRAMMAR_MODES:
            raise ModelError(f"grammar mode {grammar!r}: choose one of {', '.join(GRAMMAR_MODES)}")
        self.grammar: list[str] | None = None
        name = str(self.path)  # its folder is often just "model"
        if grammar != "off" and not self.dynamic_graph:
            self.notes.append(f"speech model {name} has a static graph: free recognition")
        elif grammar == "auto" and not self.in_vocabulary(UNKNOWN_WORD):
            # without [unk] every sound is forced onto a grammar phrase: false matches
            self.notes.append(f"speech model {name} has no {UNKNOWN_WORD} word: free recognition")
        elif grammar != "off":
            self.grammar, dropped = self._build_grammar()
            if not self.grammar:
                self.grammar = None
                self.notes.append(
                    f"speech model {name}: no lexicon phrase is in its vocabulary; free recognition"
                )
            elif dropped:
                self.notes.append(
                    f"speech model {name}: {dropped} lexicon phrase(s) left out of the grammar "
                    "(words not in its vocabulary; see 'audio-classifier lexicon check')"
                )
        self.mode = "grammar" if self.grammar else "free"
        self._grammar_json = json.dumps(self.grammar, ensure_ascii=False) if self.grammar else None

    def in_vocabulary(self, word: str) -> bool:
        return self.model.vosk_model_find_word(word) != -1

    def _build_grammar(self) -> tuple[list[str], int]:
        phrases: list[str] = []
        dropped = 0
        for entry in self.lexicon.entries:
            words, missing = segment(entry.phrase, self.in_vocabulary)
            if missing or not words:
                dropped += 1
                continue
            phrase = " ".join(words)
            if phrase not in phrases:
                phrases.append(phrase)
        if phrases and self.in_vocabulary(UNKNOWN_WORD):
            phrases.append(UNKNOWN_WORD)
        return phrases, dropped

    def missing_words(self) -> list[tuple[str, str, list[str]]]:
        """(phrase, where, pieces not in the vocabulary) for every lexicon phrase."""
        out = []
        for entry in self.lexicon.entries:
            _, missing = segment(entry.phrase, self.in_vocabulary)
            if missing:
                out.append((entry.phrase, entry.source, missing))
        return out

    def recognizer(self):
        if self._grammar_json:
            return self._vosk.KaldiRecognizer(self.model, self.sample_rate, self._grammar_json)
        return self._vosk.KaldiRecognizer(self.model, self.sample_rate)

    def open(self) -> AsrStream:
        return AsrStream(self)

    def reload(self) -> None:
        return None


class AsrStream:
    """One call's recogniser. Feed 8 kHz float32 samples in order."""

    info = INFO

    def __init__(self, channel: VoskChannel) -> None:
        self._channel = channel
        self._recognizer = channel.recognizer()
        self._resampler = Resampler(SAMPLE_RATE, channel.sample_rate)
        self._finals: list[str] = []
        self._partial = ""
        self._utterance_start_s = 0.0
        self._position_s = 0.0

    @property
    def transcript(self) -> str:
        return " ".join(t for t in [*self._finals, self._partial] if t)

    def process(self, samples: np.ndarray, start_sample: int) -> list[Evidence]:
        self._position_s = (start_sample + len(samples)) / SAMPLE_RATE
        return self._feed(self._resampler.process(samples))

    def heard(self) -> dict[str, str] | None:
        """The recogniser's final text so far and its current partial, matched or not:
        a carrier prompt no lexicon phrase knows still leaves its words in the record."""
        if not self._finals and not self._partial:
            return None
        return {"final": " ".join(self._finals), "partial": self._partial}

    def prepare(self, samples: np.ndarray, start_sample: int) -> None:
        """The recogniser takes audio as it comes: nothing to batch."""

    def finish(self) -> list[Evidence]:
        evidence = self._feed(self._resampler.flush())
        text = json.loads(self._recognizer.FinalResult()).get("text", "")
        return evidence + self._on_text(text, final=True)

    def pending(self) -> None:
        """A partial result is reported as a claim (below the decision threshold), not held."""
        return None

    def _feed(self, samples: np.ndarray) -> list[Evidence]:
        if not len(samples):
            return []
        pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        if self._recognizer.AcceptWaveform(pcm):
            return self._on_text(json.loads(self._recognizer.Result()).get("text", ""), final=True)
        partial = json.loads(self._recognizer.PartialResult()).get("partial", "")
        if partial == self._partial:
            return []
        return self._on_text(partial, final=False)

    def _on_text(self, text: str, final: bool) -> list[Evidence]:
        text = text.replace(UNKNOWN_WORD, " ").strip()
        start = self._utterance_start_s
        if final:
            if text:
                self._finals.append(text)
            self._partial = ""
            self._utterance_start_s = self._position_s
        else:
            self._partial = text
        match = self._channel.lexicon.match(text) if text else None
        if match is None or match.entry.label == FILLER:
            return []
        table = EXACT_SCORE if match.edits == 0 else ONE_EDIT_SCORE
        return [
            Evidence(
                CHANNEL,
                match.entry.label,
                table["final" if final else "partial"],
                round(start, 3),
                round(self._position_s, 3),
                {
                    "transcript": self.transcript if not final else " ".join(self._finals),
                    "matched_phrase": match.entry.phrase,
                    "heard": match.matched_text,
                    "edits": match.edits,
                    "partial": not final,
                    "mode": self._channel.mode,
                },
            )
        ]
