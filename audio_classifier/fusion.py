"""Fusion: the evidence so far becomes one label with a confidence.

Each claim (channel, label, score) counts as independent odds ``score / (1 - score)``
raised to the channel's weight; claims for the same label multiply (naive Bayes), and the
label's confidence is its odds over the sum of all candidates' odds plus one unit of
"none of these" mass::

    confidence(L) = O(L) / (1 + sum over candidates C of O(C))

so a single claim keeps its own score, agreeing channels raise it, disagreeing channels
lower it, and weak claims never add up to certainty about a label nobody saw.

Candidates are chosen by tier (see ``labels.py``): once an outcome is heard with at least
``outcome_floor`` (or, without signalling hints, heard at all after the progress sounds
stopped), progress labels (ringback before the announcement) stop competing, and a
specific announcement explains away a generic tone (the busy tone after "the number you
dialled does not exist"). Signalling hints never choose the candidates when audio
evidence exists; they only multiply the odds of labels they agree with, and count against
the others once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .config import FusionConfig
from .evidence import Evidence
from .labels import LABELS, UNKNOWN
from .tones import CHANNEL as TONE_CHANNEL

SIGNALLING = "signalling"
"""Channel name of evidence that comes from SIP / Q.850 hints rather than audio."""

_TIER_RANK = {"progress": 0, "generic": 1, "specific": 2}

TONE_DEFINED = frozenset({"fax", "busy_tone", "congestion_tone", "sit"})
"""Labels the tone channel measures exactly (frequencies and cadence). Another channel's
claim for one of them still competes, but it only pushes lower tiers out of the running
(ringback, silence; a busy tone) when the tone channel heard that label too: the trained
model, hearing babble over ringback, can call it "fax" while no fax tone ever sounded.
Such a claim alone also leaves the choice to signalling hints, as progress labels do. When
the tone channel does hear the label, the other channel's claim is not independent evidence
(both heard the same tone), so the label takes the stronger of the claims, not their product:
an intercept SIT (0.85) then still waits, below the decision threshold, for the announcement
that usually follows it, however sure the model is that it heard a SIT."""


CADENCED_PROGRESS = frozenset({"ringback"})
"""Progress tones the tone channel recognises by their cadence. Their gaps are silence (CN
ringback: 1 s on, 4 s off), so while the tone channel claims one, another channel's
"silence" is the gap, not a rival: the trained model, whose window (1.5 s in the shipped
model) can fall wholly in a gap, otherwise ends a ringing call as "silence" (measured on
ringback of every plan through a 3.7 kHz low-pass, as a line's codec filters its noise: 13
of 96 calls, none with the rule; no label changed on the recipe's check sets). The tone
channel's own silence claim still competes."""


@dataclass(frozen=True)
class FusionResult:
    label: str
    confidence: float
    scores: dict[str, float]
    """Confidence of every candidate label."""


def _odds(score: float, weight: float, cap: float) -> float:
    p = min(max(score, 0.0), cap)
    return (p / (1.0 - p)) ** weight


def strongest(evidence: Iterable[Evidence]) -> dict[tuple[str, str], Evidence]:
    """The strongest claim per (channel, label): what each channel currently believes."""
    best: dict[tuple[str, str], Evidence] = {}
    for item in evidence:
        current = best.get(item.key)
        if current is None or item.score > current.score:
            best[item.key] = item
    return best


def fuse(evidence: Iterable[Evidence], config: FusionConfig) -> FusionResult:
    """Combine *evidence* into the most likely label and its confidence."""
    claims = list(strongest(evidence).values())
    audio = _without_cadence_gaps([c for c in claims if c.channel != SIGNALLING])
    hints = _hint_groups([c for c in claims if c.channel == SIGNALLING])
    if not claims:
        return FusionResult(UNKNOWN, 1.0, {})

    hint_weight = config.channel_weights.get(SIGNALLING, 0.5)
    odds: dict[str, float] = {}
    competing = 0.0
    counted = _counted(audio)
    top_rank = _top_rank(counted, config.outcome_floor)
    if top_rank == 0 and hints:
        # Nothing but progress (ringback, silence) was heard: the signalled outcome wins.
        for labels, score in hints:
            odds[labels[0]] = max(odds.get(labels[0], 0.0), _odds(score, hint_weight, config.max_score))
    else:
        if top_rank == 0 and _after_progress(counted):
            top_rank = 1  # the ringing stopped and something else played: progress is over
        candidates = _candidates(audio, top_rank)
        tones_heard = _confirmed_tones(audio)
        for claim in audio:
            if claim.label in candidates:
                weight = config.channel_weights.get(claim.channel, 1.0)
                claim_odds = _odds(claim.score, weight, config.max_score)
                if claim.label in tones_heard:
                    # every channel heard the same tone: the strongest claim, not a product
                    odds[claim.label] = max(odds.get(claim.label, 0.0), claim_odds)
                else:
                    odds[claim.label] = odds.get(claim.label, 1.0) * claim_odds
        # A hint multiplies the odds of the candidates it supports; a hint that supports
        # none of them counts against them all, once.
        for labels, score in hints:
            factor = _odds(score, hint_weight, config.max_score)
            agreeing = [label for label in labels if label in odds]
            for label in agreeing:
                odds[label] *= factor
            if not agreeing:
                competing += factor
    total = 1.0 + sum(odds.values()) + competing
    scores = {label: value / total for label, value in odds.items()}
    if not scores:
        return FusionResult(UNKNOWN, 1.0 / total, {})
    order = list(LABELS)
    label = max(scores, key=lambda name: (scores[name], -order.index(name)))
    return FusionResult(label, scores[label], scores)


def _hint_groups(hints: list[Evidence]) -> list[tuple[tuple[str, ...], float]]:
    """Hint claims grouped by the signalling fact behind them: (labels it supports, score)."""
    groups: dict[str, tuple[list[str], float]] = {}
    for claim in hints:
        key = repr(sorted(claim.detail.items()))
        labels, score = groups.setdefault(key, ([], claim.score))
        labels.append(claim.label)
        groups[key] = (labels, max(score, claim.score))
    return [(tuple(labels), score) for labels, score in groups.values()]


def _without_cadence_gaps(audio: list[Evidence]) -> list[Evidence]:
    """*audio* without other channels' "silence" while the tone channel claims a cadenced
    progress tone (see ``CADENCED_PROGRESS``)."""
    if not any(c.channel == TONE_CHANNEL and c.label in CADENCED_PROGRESS for c in audio):
        return audio
    return [c for c in audio if c.label != "silence" or c.channel == TONE_CHANNEL]


def _confirmed_tones(audio: list[Evidence]) -> set[str]:
    """Tone-defined labels the tone channel itself claims (see ``TONE_DEFINED``)."""
    return {c.label for c in audio if c.channel == TONE_CHANNEL} & TONE_DEFINED


def _counted(audio: list[Evidence]) -> list[Evidence]:
    """The claims that can end progress: a tone-defined label counts only if the tone
    channel claims it (see ``TONE_DEFINED``)."""
    confirmed = _confirmed_tones(audio)
    return [c for c in audio if c.label not in TONE_DEFINED or c.label in confirmed]


def _top_rank(counted: list[Evidence], floor: float) -> int:
    """Highest tier rank among *counted* claims (``_counted``) scoring at least *floor* (0 if none)."""
    return max((_TIER_RANK[LABELS[c.label].tier] for c in counted if c.score >= floor), default=0)


def _after_progress(counted: list[Evidence]) -> bool:
    """True when, among *counted* claims (``_counted``: every progress claim is one), an
    outcome claim of any score started after every progress claim had ended.

    Ringback followed by an announcement under babble leaves a strong ringback claim and a
    weak one for the announcement; the call is no longer ringing, so ringback must not be
    the answer, even while no channel is sure which outcome followed. A progress sound
    still heard (a ringback clip with a stray "human" window inside it) ends after such a
    claim starts and keeps competing. Signalling hints still choose the label when no
    outcome reaches ``outcome_floor``: this only decides among the audio's own claims."""
    progress_end = max((c.end_s for c in counted if LABELS[c.label].tier == "progress"), default=None)
    return progress_end is not None and any(
        LABELS[c.label].tier != "progress" and c.start_s >= progress_end for c in counted
    )


def _candidates(audio: list[Evidence], top_rank: int) -> set[str]:
    """Labels allowed to compete: those of tier rank *top_rank* (``_top_rank``) and above."""
    return {c.label for c in audio if _TIER_RANK[LABELS[c.label].tier] >= top_rank}
