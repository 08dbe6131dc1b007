"""The call-progress decision model: the channels' claims so far become one label, its
confidence, and whether the session may become final now.

A call unfolds in phases, and the decision follows the phase the call is in::

    progress (ringback, music, silence) -> preamble (SIT) -> outcome (announcement, answer, tone)

**Scoring.** Each claim (channel, label, score) counts as odds ``s / (1 - s)`` raised to
the channel's weight; claims for one label from different channels multiply (naive Bayes),
and a label's confidence is its odds over those of every candidate plus one unit of "none
of these"::

    confidence(L) = O(L) / (1 + sum over candidates C of O(C))

so a single claim keeps its own score, agreeing channels raise it, rivals lower it, and
weak claims never add up to certainty about a label nobody heard.

**Which claims count** (one function each, each tested on its own in tests/test_decision.py):

1. ``_exact``: a label a channel measures exactly (``ChannelInfo.exact_labels``: tones by
   frequency and cadence) counts once. When that channel claims it, the strongest claim
   stands for all (every channel heard the same tone); when it does not, another channel's
   claim competes at no more than ``outcome_floor`` and cannot end progress (the model
   calling babble "fax", pink noise "ringback").
2. ``_outranked``: a claim lying (at least half) within the span of a claim of a channel
   of higher ``authority``, for another label, does not count (an identified recording
   outranks what the model hears in it).
3. ``_cadence_gaps``: while a channel claims a tone it knows by its cadence
   (``gapped_labels``: ringback), other channels' "silence" is the tone's gaps.
4. ``_phase_candidates``: progress labels compete only until an outcome is heard (at
   ``outcome_floor``, or at any score once it began after every progress claim ended); a
   specific outcome (an announcement) explains a generic one (the busy tone after it).
5. ``_preamble``: a SIT is a preamble. With an outcome claim begun after it, the outcome
   decides and the SIT only supports the labels it names; with nothing after it, it is the
   outcome.
6. ``_apply_hints``: signalling hints (claims of channels that cannot end progress)
   multiply the odds of the audio's labels they agree with, or count once against them all.
   They choose the label only when the audio holds nothing but progress.

**When it may become final** (``Verdict.hold`` names what holds it; ``None``: it may):

- a progress label never is: the call is still ringing;
- a preamble alone only after ``sit_wait_s`` with nothing begun after it, or, when something
  began after it that is not yet recognised, after ``announcement_wait_s``, or at the end;
- a claim of a windowed channel alone whose window began before the last transition out of
  progress (where a channel that locates its claims exactly last heard a progress sound)
  mixes ringback and speech: it waits for a window wholly after it, or for another channel
  to agree;
- while a channel of higher authority than every supporter of the label accumulates a
  claim for another label (fingerprint votes, a SIT still arriving), for at most
  ``pending_wait_s`` after it began.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

from .channels import ChannelInfo
from .config import DecisionConfig
from .evidence import Evidence
from .labels import LABELS, PREAMBLE_LABELS, UNKNOWN

_TIER_RANK = {"progress": 0, "generic": 1, "specific": 2}

REACHABLE = "reachable"
"""The number state of an answer (human, voicemail) and of ringing."""

FOLLOWING_SCORE = 0.9
"""An outcome claim follows a SIT when it is as strong as the SIT or this strong (the
default decision threshold; a constant, so that which claims follow a SIT does not depend
on the threshold, and evaluate can replay other thresholds from one run)."""

PREAMBLE_OVERLAP_S = 0.3
"""An outcome claim that begins this close before a SIT's end still counts as following it:
a window may begin in the SIT's last block."""

SPAN_TOLERANCE_S = 0.25
"""How far a claim may reach beyond an outranking claim's span (one block) and still lie
within it."""

OUTRANKED_SHARE = 0.5
"""... or how much of a claim's span at least an outranking claim must cover for the claim
to lie within it: a model window half over a SIT heard the SIT ("voicemail" under babble),
while one whose larger part is after it hears what follows."""

NOTHING_HEARD_CONFIDENCE = 0.1
"""Confidence of ``unknown`` when no channel claimed anything: how rarely that is the right
answer. Of the 11 calls of the call-shaped check sets (5,452 clips) and the held-out split
(3,000) that ended with no claim at all, none was truly unknown (human answers under
babble, short announcements); (0 + 1) / (11 + 2) rounds to 0.1."""

HOLD_PROGRESS = "progress: the call is still ringing"
HOLD_PREAMBLE = "preamble: waiting for the announcement a SIT announces"
HOLD_TRANSITION = "transition: the only claim's window began before the ringing stopped"
HOLD_PENDING = "pending: a channel that outranks is still identifying the audio"
TIMED_HOLDS = frozenset({HOLD_PREAMBLE, HOLD_PENDING})
"""Holds that time alone can release: the session asks again after every block while one
holds, even when no channel said anything new."""


@dataclass
class Memory:
    """What one call's decisions remember that its standing claims may no longer show: a
    channel that keeps only its latest claim (the model) forgets what it said earlier."""

    heard_after_preamble: set[float] = field(default_factory=set)
    """Ends (s) of SITs after which something other than silence was claimed in time."""


@dataclass(frozen=True)
class Verdict:
    """The decision model's answer at one moment of a call."""

    label: str
    confidence: float
    scores: dict[str, float]
    """Confidence of every candidate label."""
    hold: str | None = None
    """Why the verdict may not become final yet (one of the ``HOLD_*`` texts), or ``None``."""


def decide(
    claims: Iterable[Evidence],
    infos: Mapping[str, ChannelInfo],
    config: DecisionConfig,
    *,
    now_s: float,
    ended: bool = False,
    pending: Sequence[Evidence] = (),
    memory: Memory | None = None,
) -> Verdict:
    """The verdict on *claims* (each channel's standing claims) at *now_s* seconds of audio.

    *infos* are the facts of the channels present in the session (a channel missing from it
    is treated as an audio channel with no declared facts); *ended* is true once the audio
    is over; *pending* holds claims channels are still accumulating (``ChannelStream.pending``);
    *memory* is the call's own record of what was heard before (one per session).
    """
    claims = list(claims)
    if not claims:
        return Verdict(UNKNOWN, NOTHING_HEARD_CONFIDENCE, {})
    hints = [c for c in claims if not _info(infos, c.channel).ends_progress]
    audio = _cadence_gaps([c for c in claims if _info(infos, c.channel).ends_progress], infos)
    audio = _outranked(audio, infos, config.outcome_floor)
    audio, unconfirmed, confirmed = _exact(audio, infos, config.outcome_floor)
    audio, preamble = _preamble(audio, unconfirmed, config, memory if memory is not None else Memory())

    unconfirmed_ids = {id(c) for c in unconfirmed}
    counted = [c for c in audio if id(c) not in unconfirmed_ids]  # the claims that can end progress
    top_rank = _top_rank(counted, config.outcome_floor)
    odds: dict[str, float] = {}
    competing = 0.0
    signalled = {label for labels, _ in _hint_groups(hints) for label in labels}
    named = any(c.label in signalled and LABELS[c.label].tier != "progress" for c in audio)
    if top_rank == 0 and hints and not named:
        # no outcome heard at the floor, and none the signalling names: the signalled one
        weight = config.channel_weights.get(hints[0].channel, 0.5)
        for labels, score in _hint_groups(hints):
            odds[labels[0]] = max(odds.get(labels[0], 0.0), _odds(score, weight, config.max_score))
    else:
        if top_rank == 0 and ((hints and named) or _after_progress(counted)):
            top_rank = 1  # an outcome was heard, however faintly: progress is over
        for label in _phase_candidates(audio, top_rank):
            odds[label] = _label_odds([c for c in audio if c.label == label], config, once=label in confirmed)
        for claim in preamble.claims if preamble.followed else ():
            if claim.label in odds:  # the SIT supports the outcome that agrees with it
                weight = config.channel_weights.get(claim.channel, 1.0)
                odds[claim.label] *= _odds(claim.score, weight, config.max_score)
        competing = _apply_hints(odds, hints, config)

    total = 1.0 + sum(odds.values()) + competing
    scores = {label: value / total for label, value in odds.items()}
    if not scores:
        return Verdict(UNKNOWN, 1.0 / total, {})
    order = list(LABELS)
    label = max(scores, key=lambda name: (scores[name], -order.index(name)))
    hold = _hold(label, audio, preamble, infos, config, now_s, ended, pending)
    return Verdict(label, scores[label], scores, hold)


# -- which claims count ----------------------------------------------------------------------


def _info(infos: Mapping[str, ChannelInfo], name: str) -> ChannelInfo:
    return infos.get(name) or ChannelInfo(name)


def _odds(score: float, weight: float, cap: float) -> float:
    p = min(max(score, 0.0), cap)
    return (p / (1.0 - p)) ** weight


def _label_odds(claims: list[Evidence], config: DecisionConfig, *, once: bool = False) -> float:
    """One label's odds: its claims from different channels multiply, or, *once* (every
    channel heard the same tone, rule 1), the strongest stands for all."""
    each = [_odds(c.score, config.channel_weights.get(c.channel, 1.0), config.max_score) for c in claims]
    return max(each) if once else math.prod(each)


def _cadence_gaps(audio: list[Evidence], infos: Mapping[str, ChannelInfo]) -> list[Evidence]:
    """Rule 3: *audio* without other channels' "silence" while a channel claims a cadenced
    progress tone it measures (``ChannelInfo.gapped_labels``)."""
    ringing = {c.channel for c in audio if c.label in _info(infos, c.channel).gapped_labels}
    if not ringing:
        return audio
    return [c for c in audio if c.label != "silence" or c.channel in ringing]


def _outranked(audio: list[Evidence], infos: Mapping[str, ChannelInfo], floor: float) -> list[Evidence]:
    """Rule 2: *audio* without claims lying within (``SPAN_TOLERANCE_S``) or at least half
    within (``OUTRANKED_SHARE``) the span of an outcome claim, at *floor* or more, of a
    channel of higher authority for another label. A progress claim outranks
    nothing: silence over a whole call must not erase the answer heard in it."""
    ranks = {c.channel: _info(infos, c.channel).authority for c in audio}
    spans = [
        c for c in audio if ranks[c.channel] > 0 and c.score >= floor and LABELS[c.label].tier != "progress"
    ]
    if not spans:
        return audio

    def within(claim: Evidence, span: Evidence) -> bool:
        if claim.start_s >= span.start_s - SPAN_TOLERANCE_S and claim.end_s <= span.end_s + SPAN_TOLERANCE_S:
            return True
        covered = min(claim.end_s, span.end_s) - max(claim.start_s, span.start_s)
        return covered > 0 and covered >= OUTRANKED_SHARE * (claim.end_s - claim.start_s)

    def outranked(claim: Evidence) -> bool:
        return any(
            ranks[s.channel] > ranks[claim.channel] and s.label != claim.label and within(claim, s)
            for s in spans
        )

    return [c for c in audio if not outranked(c)]


def _exact(
    audio: list[Evidence], infos: Mapping[str, ChannelInfo], floor: float
) -> tuple[list[Evidence], list[Evidence], set[str]]:
    """Rule 1: (claims that count, the unconfirmed ones among them, the confirmed labels).
    A label some channel measures exactly, when that channel claims it, is confirmed: its
    claims, every channel's, count once, at the strongest score (``decide``), and keep their
    spans. When that channel does not claim it, other channels' claims of it are
    unconfirmed and count for no more than *floor*: a tone the tone channel never heard is
    a guess (the model takes pink noise for ringback, babble for fax)."""
    measured_by = {label: name for name, info in infos.items() for label in info.exact_labels}
    confirmed = {c.label for c in audio if measured_by.get(c.label) == c.channel}
    kept: list[Evidence] = []
    unconfirmed: list[Evidence] = []
    for claim in audio:
        if claim.label in measured_by and claim.label not in confirmed:
            claim = replace(claim, score=min(claim.score, floor))
            unconfirmed.append(claim)
        kept.append(claim)
    return kept, unconfirmed, confirmed


@dataclass(frozen=True)
class _Preamble:
    """What the SIT of a call (if any) means for the decision now (``_preamble``)."""

    claims: list[Evidence]
    end_s: float = 0.0
    followed: bool = False
    """An outcome as strong as the SIT began after it: the outcome decides."""
    heard: bool = False
    """An outcome or an answer was claimed after it by the time ``sit_wait_s`` had passed,
    however faintly: a voice plays, and it may be the announcement, still being
    recognised."""


def _preamble(
    audio: list[Evidence], unconfirmed: list[Evidence], config: DecisionConfig, memory: Memory
) -> tuple[list[Evidence], _Preamble]:
    """Rule 5: (claims that compete, what the SIT means).

    Preamble claims are the SIT's: those marked ``Evidence.preamble`` and claims of a
    preamble label (``labels.PREAMBLE_LABELS``). An outcome follows the SIT when a claim for
    it, as strong as the SIT itself (or strong enough to decide a call), begins after the
    SIT within ``sit_wait_s`` or, when something was claimed within that wait, within
    ``announcement_wait_s``: the preamble's claims then stop competing (``decide`` lets them
    support the labels they name). While the SIT stands, weaker claims begun after it for
    other labels are what it explains (babble, a voice the model cannot place) and do not
    compete; an outcome that begins after the wait did not follow it and competes with it.
    An answer (human, voicemail) never follows a SIT: a claim of one after it is dropped."""
    unconfirmed_ids = {id(c) for c in unconfirmed}
    claims = [c for c in audio if id(c) not in unconfirmed_ids and (c.preamble or c.label in PREAMBLE_LABELS)]
    if not claims:
        return audio, _Preamble([])
    end = _preamble_end(claims)
    floor = min(max(c.score for c in claims), FOLLOWING_SCORE)
    named = {c.label for c in claims}
    claim_ids = {id(c) for c in claims}
    outcomes = [
        c
        for c in audio
        if id(c) not in claim_ids
        and id(c) not in unconfirmed_ids
        and LABELS[c.label].tier != "progress"
        and c.start_s >= end - PREAMBLE_OVERLAP_S
    ]

    # an outcome or an answer claimed by the time the first wait ends (a voice plays: what a
    # live session knows then), remembered (``memory``) once the claim is replaced
    key = round(end, 3)
    heard = key in memory.heard_after_preamble or any(c.end_s <= end + config.sit_wait_s for c in outcomes)
    if heard:
        memory.heard_after_preamble.add(key)
    # a SIT announces a network's announcement or tone, never an answer: a voice after it
    # that a channel takes for a person or a voicemail greeting is the announcement misread
    answers = [c for c in outcomes if LABELS[c.label].number_state == REACHABLE]
    outcomes = [c for c in outcomes if LABELS[c.label].number_state != REACHABLE]
    limit = end + (config.announcement_wait_s if heard else config.sit_wait_s)
    after = [c for c in outcomes if c.start_s <= limit]
    if any(c.score >= floor for c in after):
        dropped = claim_ids | {id(c) for c in answers}
        return [c for c in audio if id(c) not in dropped], _Preamble(claims, end, True, heard)
    explained = {id(c) for c in after if c.label not in named} | {id(c) for c in answers}
    return [c for c in audio if id(c) not in explained], _Preamble(claims, end, False, heard)


def _preamble_end(preamble: list[Evidence]) -> float:
    """Where the SIT ended: its measured end when a channel marked it, else its claims' end."""
    marked = [c.end_s for c in preamble if c.preamble]
    return max(marked) if marked else max(c.end_s for c in preamble)


def _top_rank(counted: list[Evidence], floor: float) -> int:
    """Highest tier rank among *counted* claims scoring at least *floor* (0 if none)."""
    return max((_TIER_RANK[LABELS[c.label].tier] for c in counted if c.score >= floor), default=0)


def _after_progress(counted: list[Evidence]) -> bool:
    """True when an outcome claim of any score began after every progress claim had ended:
    the call stopped ringing and something else played, even if no channel is sure what.
    A progress sound still heard when the claim began keeps competing."""
    progress_end = _progress_end(counted)
    return progress_end is not None and any(
        LABELS[c.label].tier != "progress" and c.start_s >= progress_end for c in counted
    )


def _progress_end(claims: list[Evidence]) -> float | None:
    return max((c.end_s for c in claims if LABELS[c.label].tier == "progress"), default=None)


def _phase_candidates(audio: list[Evidence], top_rank: int) -> set[str]:
    """Rule 4: labels of tier rank *top_rank* and above."""
    return {c.label for c in audio if _TIER_RANK[LABELS[c.label].tier] >= top_rank}


def _hint_groups(hints: list[Evidence]) -> list[tuple[tuple[str, ...], float]]:
    """Hint claims grouped by the signalling fact behind them: (labels it supports, score)."""
    groups: dict[str, tuple[list[str], float]] = {}
    for claim in hints:
        key = repr(sorted(claim.detail.items()))
        labels, score = groups.setdefault(key, ([], claim.score))
        labels.append(claim.label)
        groups[key] = (labels, max(score, claim.score))
    return [(tuple(labels), score) for labels, score in groups.values()]


def _apply_hints(odds: dict[str, float], hints: list[Evidence], config: DecisionConfig) -> float:
    """Rule 6: multiply the odds of the candidates each hint supports; return the odds of the
    hints that support none of them, which count against them all."""
    competing = 0.0
    for labels, score in _hint_groups(hints):
        factor = _odds(score, config.channel_weights.get(hints[0].channel, 0.5), config.max_score)
        agreeing = [label for label in labels if label in odds]
        for label in agreeing:
            odds[label] *= factor
        if not agreeing:
            competing += factor
    return competing


# -- when it may become final ----------------------------------------------------------------


def _hold(
    label: str,
    audio: list[Evidence],
    preamble: _Preamble,
    infos: Mapping[str, ChannelInfo],
    config: DecisionConfig,
    now_s: float,
    ended: bool,
    pending: Sequence[Evidence],
) -> str | None:
    """Why *label* may not become final now (see the module docstring), or ``None``."""
    if LABELS[label].tier == "progress":
        return HOLD_PROGRESS
    if ended:
        return None
    support = [c for c in audio if c.label == label]
    if preamble.claims and not preamble.followed:
        waited = now_s - preamble.end_s
        if waited < config.sit_wait_s or (preamble.heard and waited < config.announcement_wait_s):
            return HOLD_PREAMBLE
    transition = _progress_end([c for c in audio if _info(infos, c.channel).window_s == 0])
    if (
        transition is not None
        and support
        and all(_info(infos, c.channel).window_s > 0 and c.start_s < transition for c in support)
        and len({c.channel for c in support}) == 1
    ):
        return HOLD_TRANSITION
    supporters = max((_info(infos, c.channel).authority for c in support), default=0)
    for claim in pending:
        waited = now_s - claim.start_s
        if (
            claim.label != label
            and _info(infos, claim.channel).authority > supporters
            and waited < config.pending_wait_s
        ):
            return HOLD_PENDING
    return None
