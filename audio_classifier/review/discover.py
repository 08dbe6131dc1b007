"""New-prompt discovery: group the recordings of a batch that no enrolled sample explains by
whether they play the same recording.

A carrier plays one recording of a prompt every time, so two calls that reached it share
landmarks at one time offset (``fingerprint.py``), whatever the line did to each. Every
candidate's landmarks are looked up in an index of all candidates' landmarks; two recordings
are linked when enough of their landmarks agree on one offset, both in votes and as a share
of the shorter one's landmarks (a shared opening, "the number you dialled", is not a shared
prompt). Groups join by average linkage (``_components``); each names its clearest member
(the most votes to the rest of its group), the one to listen to and enrol.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..audio import SAMPLE_RATE
from ..errors import AudioClassifierError
from ..fingerprint import OFFSET_TOLERANCE, FingerprintConfig, Index, landmarks
from ..samples import CHANNEL as FINGERPRINT
from ..samples import MIN_VOTES, read_audio

TONE_CHANNEL = "tone"

NOT_PROMPTS = frozenset({"ringback", "busy_tone", "congestion_tone", "fax", "silence"})
"""Decided labels whose recordings are left out: tones and silence, which the tone channel
explains already (a SIT before a prompt does not leave it out: the label is the prompt's)."""

MIN_SHARED = MIN_VOTES
"""Aligned landmarks two recordings must share to be linked: what the fingerprint channel
needs to claim a match."""

MIN_SHARE = 0.05
"""... and as a share of the shorter one's landmarks (a long recording gathers chance
alignments). Copies through AMR-NB or 10 dB of babble keep few of their landmarks, so this
is low; ``LINK_DENSITY`` keeps stray links from joining prompts."""


LINK_DENSITY = 0.3
"""Share of the pairs between two groups that must be linked for them to join."""


@dataclass
class Group:
    members: list[int]
    """Indices into the candidates, clearest first."""
    votes: list[int] = field(default_factory=list)
    """Each member's aligned votes to the rest of the group, in the same order."""


@dataclass
class Discovery:
    paths: list[str]
    """The candidates (recordings no sample explains), as the output named them."""
    records: list[dict[str, Any]]
    groups: list[Group]
    """Linked groups of two or more, largest first."""
    alone: list[int]
    """Candidates linked to no other."""
    skipped: list[tuple[str, str]]
    """(path, why) of records that were not candidates or could not be read."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "candidates": len(self.paths),
            "groups": [
                {
                    "size": len(g.members),
                    "clearest": self.paths[g.members[0]],
                    "labels": _labels(self.records[i] for i in g.members),
                    "members": [
                        {"path": self.paths[i], "votes": v} for i, v in zip(g.members, g.votes, strict=True)
                    ],
                }
                for g in self.groups
            ],
            "alone": [self.paths[i] for i in self.alone],
            "skipped": [{"path": p, "why": why} for p, why in self.skipped],
        }


def _labels(records: Iterable[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for record in records:
        label = record.get("label") or "?"
        counts[label] = counts.get(label, 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def is_candidate(record: dict[str, Any]) -> str | None:
    """Why *record* is not a candidate, or None when it is."""
    if record.get("error"):
        return "failed"
    if record.get("label") in NOT_PROMPTS:
        return f"decided {record['label']}"
    if any(e.get("channel") == FINGERPRINT for e in record.get("evidence") or []):
        return "an enrolled sample matched"
    return None


def without_tones(samples: np.ndarray, record: dict[str, Any]) -> np.ndarray:
    """*samples* silenced over the spans the tone channel claimed (ringback, a SIT, a steady
    tone): two calls with the same ringback share its landmarks at a steady offset, which
    says nothing about the prompt after it."""
    out = samples
    for item in record.get("evidence") or []:
        if item.get("channel") == TONE_CHANNEL:
            a = max(0, int(float(item.get("start_s", 0)) * SAMPLE_RATE))
            b = min(len(samples), int(float(item.get("end_s", 0)) * SAMPLE_RATE))
            if b > a:
                out = out.copy() if out is samples else out
                out[a:b] = 0.0
    return out


def resolve(path: str, audio_root: Path | None) -> Path:
    p = Path(path)
    return p if p.is_absolute() or audio_root is None else audio_root / p


def discover(
    records: Iterable[dict[str, Any]],
    audio_root: str | os.PathLike[str] | None = None,
    config: FingerprintConfig | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Discovery:
    """Group the candidate recordings of *records* (see the module)."""
    config = config or FingerprintConfig()
    root = Path(audio_root) if audio_root else None
    paths: list[str] = []
    kept: list[dict[str, Any]] = []
    skipped: list[tuple[str, str]] = []
    all_hashes, all_ids, all_times, counts = [], [], [], []
    records = list(records)
    for number, record in enumerate(records, start=1):
        path = str(record.get("path", ""))
        why = is_candidate(record)
        if why is None:
            try:
                hashes, times = landmarks(without_tones(read_audio(resolve(path, root)), record), config)
            except (AudioClassifierError, OSError) as exc:
                why = f"unreadable: {exc}"
            else:
                if len(hashes) < MIN_SHARED:
                    why = "too little distinctive sound"
        if why is not None:
            skipped.append((path, why))
        else:
            index = len(paths)
            paths.append(path)
            kept.append(record)
            all_hashes.append(hashes)
            all_times.append(times)
            all_ids.append(np.full(len(hashes), index, dtype=np.int32))
            counts.append(len(hashes))
        if progress is not None:
            progress(number, len(records))
    n = len(paths)
    if n == 0:
        return Discovery(paths, kept, [], [], skipped)
    index = Index(np.concatenate(all_hashes), np.concatenate(all_ids), np.concatenate(all_times))
    found: dict[tuple[int, int], list[int]] = {}  # (a, b), a < b -> [votes a->b, votes b->a]
    for a in range(n):
        ids, offsets, _ = index.lookup_with_query(all_hashes[a], all_times[a])
        other = ids != a
        for b, v in _aligned_votes(ids[other], offsets[other]).items():
            pair = found.setdefault((min(a, b), max(a, b)), [0, 0])
            pair[0 if a < b else 1] = v
    edges = {}
    for (a, b), (ab, ba) in found.items():
        votes = min(ab, ba)  # both ways: a short recording inside a long one counts once
        if votes >= MIN_SHARED and votes >= MIN_SHARE * min(counts[a], counts[b]):
            edges[(a, b)] = votes
    groups, alone = _components(n, edges)
    return Discovery(paths, kept, groups, alone, skipped)


def _aligned_votes(ids: np.ndarray, offsets: np.ndarray) -> dict[int, int]:
    """Per candidate hit, its best count of hits at one offset (±``OFFSET_TOLERANCE``)."""
    if not len(ids):
        return {}
    key = ids.astype(np.int64) * (1 << 20) + (offsets.astype(np.int64) + (1 << 19))
    keys, counts = np.unique(key, return_counts=True)
    smoothed = counts.copy()
    for d in range(1, OFFSET_TOLERANCE + 1):
        for sign in (-1, 1):
            at = np.searchsorted(keys, keys + sign * d)
            ok = (at < len(keys)) & (keys[np.minimum(at, len(keys) - 1)] == keys + sign * d)
            smoothed[ok] += counts[at[ok]]
    best: dict[int, int] = {}
    for candidate, votes in zip((keys >> 20).tolist(), smoothed.tolist(), strict=True):
        if votes > best.get(candidate, 0):
            best[candidate] = votes
    return best


def _components(n: int, edges: dict[tuple[int, int], int]) -> tuple[list[Group], list[int]]:
    """Groups (clearest member first) and the candidates linked to none.

    Average linkage over the links, strongest first: two groups join when at least
    ``LINK_DENSITY`` of the pairs between them are linked. The copies of one prompt link
    to most of each other; a stray link between two prompts (the same noise recording
    under both, a shared word) is one pair among a hundred and joins nothing."""
    neighbours: list[set[int]] = [set() for _ in range(n)]
    for a, b in edges:
        neighbours[a].add(b)
        neighbours[b].add(a)
    group_of = list(range(n))
    members: dict[int, list[int]] = {i: [i] for i in range(n)}
    for (a, b), _ in sorted(edges.items(), key=lambda item: (-item[1], item[0])):
        ga, gb = group_of[a], group_of[b]
        if ga == gb:
            continue
        mine, theirs = members[ga], set(members[gb])
        linked = sum(len(neighbours[i] & theirs) for i in mine)
        if linked < LINK_DENSITY * len(mine) * len(theirs):
            continue
        if len(mine) < len(theirs):
            ga, gb = gb, ga
        for i in members[gb]:
            group_of[i] = ga
        members[ga] += members.pop(gb)
    inside = [0] * n
    for (a, b), votes in edges.items():
        if group_of[a] == group_of[b]:
            inside[a] += votes
            inside[b] += votes
    groups, alone = [], []
    for group in members.values():
        if len(group) == 1:
            alone.append(group[0])
            continue
        group.sort(key=lambda i: (-inside[i], i))
        groups.append(Group(group, [inside[i] for i in group]))
    groups.sort(key=lambda g: (-len(g.members), g.members[0]))
    return groups, alone
