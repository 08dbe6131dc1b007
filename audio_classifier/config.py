"""Classifier options. Every number that changes behaviour lives here, with its unit."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Any

from .errors import ConfigError

ACT_CONFIDENCE = 0.925
"""Default act threshold with a confidence map (a score of 0.9648 with the shipped map): the
smallest confidence at which no reachable call of two draws of the call-shaped check set
(2 x 2,040 reachable calls) is given a destructive action; the closest were real human
prompts in a voice the model never heard, taken for ``barred`` at 0.920-0.921."""

ACT_SCORE = 0.97
"""Default act threshold when confidence is the decision score (no map): at least the same
bar on the score's own scale."""


@dataclass(frozen=True)
class DecisionConfig:
    """How the channels' claims become one decision (see ``decision.py``)."""

    decision_threshold: float = 0.9
    """Decision score (``Decision.score``, the decision model's own) at which a session
    becomes final and a dialer may hang up."""

    act_threshold: float | None = None
    """Confidence (``Decision.confidence``) a destructive list action (remove, suppress)
    needs; below it the decision keeps its label and its action becomes ``review``
    (``Decision.withheld_action``). ``None``: the default for the confidence in use,
    ``ACT_CONFIDENCE`` with a confidence map, ``ACT_SCORE`` without one
    (:meth:`act_threshold_for`)."""

    outcome_floor: float = 0.5
    """Score from which an outcome (generic or specific label) supersedes progress
    labels (ringback, silence) and a specific label supersedes generic ones. An outcome
    heard after every progress sound had stopped supersedes progress at any score
    (``decision._after_progress``)."""

    sit_wait_s: float = 2.5
    """After a SIT, how long the decision waits for anything to begin (the announcement
    that usually follows) before the SIT decides alone. The model's first window wholly
    after the SIT ends 1.5 s after it, on a 0.25 s grid."""

    announcement_wait_s: float = 8.0
    """When something began after a SIT but is not yet recognised, how long after the SIT
    the decision waits for it to be (the shipped model recognises 90 % of announcements
    within 3.9 s of their start) before the SIT decides alone."""

    pending_wait_s: float = 1.0
    """How long a decision waits for a channel that outranks the others while it
    accumulates a claim for another label (fingerprint votes; the tone channel's SIT still
    arriving, from each of its tones' start)."""

    channel_weights: dict[str, float] = field(
        default_factory=lambda: {
            "tone": 1.0,
            "model": 1.0,
            "asr": 1.0,
            "fingerprint": 1.2,
            "signalling": 0.5,
        }
    )
    """Exponent on each channel's odds: < 1 trusts a channel less than its own score."""

    max_score: float = 0.995
    """Scores are clipped to this before turning into odds, so no one claim is infinite."""

    def act_threshold_for(self, *, calibrated: bool) -> float:
        """The act threshold in force: the configured one, else the default for calibrated
        confidences or for scores."""
        if self.act_threshold is not None:
            return self.act_threshold
        return ACT_CONFIDENCE if calibrated else ACT_SCORE


@dataclass(frozen=True)
class ClassifierConfig:
    """Top-level options of a :class:`~audio_classifier.Classifier`."""

    max_duration_s: float = 60.0
    """Only the first this-many seconds of a call are analysed."""

    early_decision: bool = True
    """Make the decision final as soon as its score reaches the decision threshold,
    and stop analysing (what a dialer does). When false, every call is analysed up to its
    end (or ``max_duration_s``) and decided then."""

    block_s: float = 0.25
    """Audio is analysed in blocks of this length; decisions are checked after each.
    Blocks sit on fixed positions of the stream, so chunking never changes a result; with
    the model channel on they end where its windows end (every 0.25 s, the first at 1.515 s
    with the shipped model's 1.5 s windows), so a window is judged the moment its last
    sample arrives (every window when this divides 0.25 s, as 0.125 or 0.05 do; with 0.1
    only every other one). Measured on the held-out split against 0.1 s blocks that ignored
    the windows: announcements decided 0.05-0.06 s sooner (mean per label), tones 0.02-0.05
    s later, the same labels, and 1.4x the throughput (the per-block cost of every channel
    is paid 2.5x less often)."""

    update_min_delta: float = 0.05
    """An interim decision is emitted when the label changes or the confidence moves by
    at least this much."""

    model_path: str | None = "default"
    """The trained model (.onnx with its .json card): ``"default"`` for the shipped one
    (or the file named by $AUDIO_CLASSIFIER_MODEL), a path, or ``None`` to run without the
    model channel."""

    confidence_map: str | None = "default"
    """How decision scores become confidences (``calibration.py``): ``"default"`` for the
    map shipped with the shipped model (none for another model, with a note), a map file's
    path, or ``None``: confidence is the score."""

    asr_model: str | None = "auto"
    """Speech model for the ASR channel: ``"auto"`` (``$AUDIO_CLASSIFIER_ASR_MODEL``, else
    the default model if fetched, else none), a folder or fetched model name, or ``None``."""

    asr_required: bool = False
    """Fail instead of running without the ASR channel when no speech model is found."""

    asr_grammar: str = "auto"
    """Constrain recognition to the lexicon's phrases: ``auto`` where the model allows it
    and has an ``[unk]`` word for everything else, ``on`` or ``off``."""

    lexicon_dirs: tuple[str, ...] = ()
    """Extra folders of ``<language>.tsv`` lexicon files, added to the built-in ones."""

    samples_path: str | None = "default"
    """Sample library for the fingerprint channel: ``"default"`` ($AUDIO_CLASSIFIER_SAMPLES,
    else the shipped library), a path, or ``None`` to run without the channel."""

    decision: DecisionConfig = field(default_factory=DecisionConfig)

    def __post_init__(self) -> None:
        if not self.max_duration_s > 0:
            raise ConfigError(f"max_duration_s must be > 0 seconds, got {self.max_duration_s}")
        if not 0.01 <= self.block_s <= 1.0:
            raise ConfigError(f"block_s must be within 0.01..1.0 seconds, got {self.block_s}")
        for name in ("decision_threshold", "act_threshold"):
            value = getattr(self.decision, name)
            if value is not None and not 0.0 < value <= 1.0:
                raise ConfigError(f"{name} must be within (0, 1], got {value}")
        for name in ("sit_wait_s", "announcement_wait_s", "pending_wait_s"):
            value = getattr(self.decision, name)
            if not 0.0 <= value <= 30.0:
                raise ConfigError(f"{name} must be within 0..30 seconds, got {value}")
        if self.decision.announcement_wait_s < self.decision.sit_wait_s:
            raise ConfigError(
                f"announcement_wait_s ({self.decision.announcement_wait_s:g} s) must be at least "
                f"sit_wait_s ({self.decision.sit_wait_s:g} s): it is the longer wait"
            )

    def with_options(self, **options: Any) -> ClassifierConfig:
        """Return a copy with top-level or decision options replaced (``None`` keeps the value)."""
        top = {f.name for f in fields(self)}
        decision_names = {f.name for f in fields(DecisionConfig)}
        top_changes: dict[str, Any] = {}
        decision_changes: dict[str, Any] = {}
        for name, value in options.items():
            if value is None:
                continue
            if name in top:
                top_changes[name] = value
            elif name in decision_names:
                decision_changes[name] = value
            else:
                raise ConfigError(f"unknown option {name!r}")
        decision = replace(self.decision, **decision_changes) if decision_changes else self.decision
        return replace(self, decision=decision, **top_changes)


FusionConfig = DecisionConfig
"""The former name of :class:`DecisionConfig`, kept for code written against it."""
