"""The review database: the records of one classify or evaluate output, ordered by what most
needs a person, and the reviewers' corrections, enrolments and training picks.

One SQLite file (``--db``, default beside the output). Loading an output again adds the
records it did not have and keeps every correction: a record is known by its identity (path
and manifest row, ``batch.record_identity``), as a resumed batch knows it.
"""

from __future__ import annotations

import csv
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import sqlalchemy as sa

from ..batch import DECISION_FIELDS, record_identity
from ..csvtext import read_text
from ..errors import UsageError
from ..labels import DESTRUCTIVE_ACTIONS, LABELS

SCHEMA_VERSION = 1
"""Bumped when the tables change; a database of another version is refused, not altered."""

LOAD_CHUNK = 2000
"""Records inserted per statement while an output loads."""

LOW_CONFIDENCE = 0.9
"""Below this a decision is doubtful: its shortfall counts towards its priority."""

PRIORITY_WEIGHTS = {
    "disagrees with the manifest": 3.0,
    "failed": 2.5,
    "destructive action": 1.5,
    "channels disagree": 1.0,
    "low confidence": 1.0,
}
"""What puts a record near the top of the queue. A record the manifest labels otherwise is
either the classifier's error or the manifest's, and a person settles it first; a failed
input is next; then the decisions a dialer acts on irreversibly; then doubt. Low confidence
adds its weight times the shortfall below ``LOW_CONFIDENCE`` (scaled to 0-1)."""

metadata = sa.MetaData()

meta = sa.Table(
    "meta",
    metadata,
    sa.Column("key", sa.String(40), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

records = sa.Table(
    "records",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("identity", sa.Text, nullable=False, unique=True),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("label", sa.String(40), nullable=True),
    sa.Column("confidence", sa.Float, nullable=True),
    sa.Column("action", sa.String(40), nullable=True),
    sa.Column("manifest_label", sa.String(40), nullable=True),
    sa.Column("priority", sa.Float, nullable=False),
    sa.Column("reasons", sa.Text, nullable=False),
    sa.Column("record", sa.Text, nullable=False),
    sa.Index("ix_records_priority", sa.desc("priority"), "id"),
    sa.Index("ix_records_label", "label"),
)
"""One row per record of the loaded output: its decision's fields the queue filters on, and
the whole record (JSON) for the page."""

corrections = sa.Table(
    "corrections",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("record_id", sa.Integer, sa.ForeignKey("records.id"), nullable=False),
    sa.Column("label", sa.String(40), nullable=False),
    sa.Column("reviewer", sa.String(200), nullable=False),
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("ix_corrections_record", "record_id"),
)
"""Append-only: a reviewer's later verdict on a record supersedes their earlier one; every
reviewer's latest verdict counts for agreement. A verdict equal to the classifier's label
is a confirmation."""

actions = sa.Table(
    "actions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("record_id", sa.Integer, sa.ForeignKey("records.id"), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("label", sa.String(40), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
    sa.Column("reviewer", sa.String(200), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)
"""What a reviewer did with a recording beyond labelling it: ``enrol`` (into the sample
library) or ``train`` (into the recordings manifest of ``training.build --recordings``)."""


@dataclass(frozen=True)
class Filters:
    """What the queue shows: every field optional."""

    label: str | None = None
    action: str | None = None
    min_confidence: float | None = None
    max_confidence: float | None = None
    column: str | None = None
    """A manifest column (carrier, source, ...) that must equal ``value``."""
    value: str | None = None
    reviewed: bool | None = None
    """Only records with (True) or without (False) a correction."""


def priority_of(record: dict[str, Any], manifest_label: str | None) -> tuple[float, list[str]]:
    """How much a record needs a person, and why (``PRIORITY_WEIGHTS``)."""
    reasons: list[str] = []
    score = 0.0
    if record.get("error"):
        reasons.append("failed")
        score += PRIORITY_WEIGHTS["failed"]
    label = record.get("label")
    if manifest_label and label and manifest_label != label:
        reasons.append("disagrees with the manifest")
        score += PRIORITY_WEIGHTS["disagrees with the manifest"]
    if record.get("action") in DESTRUCTIVE_ACTIONS:
        reasons.append("destructive action")
        score += PRIORITY_WEIGHTS["destructive action"]
    tops: dict[str, tuple[float, str]] = {}
    for item in record.get("evidence") or []:
        channel, score_of = item.get("channel"), float(item.get("score") or 0.0)
        if channel and score_of > tops.get(channel, (-1.0, ""))[0]:
            tops[channel] = (score_of, item.get("label"))
    if len({lab for _, lab in tops.values() if lab}) > 1:
        reasons.append("channels disagree")
        score += PRIORITY_WEIGHTS["channels disagree"]
    confidence = record.get("confidence")
    if isinstance(confidence, int | float) and confidence < LOW_CONFIDENCE:
        reasons.append("low confidence")
        score += PRIORITY_WEIGHTS["low confidence"] * (LOW_CONFIDENCE - confidence) / LOW_CONFIDENCE
    return round(score, 6), reasons


def read_output(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a classify or evaluate output (JSONL, CSV, or a Parquet folder of
    parts), in order."""
    if path.is_dir():
        yield from _read_parquet(path)
        return
    if not path.is_file():
        raise UsageError(f"no such output file: {path}")
    text = read_text(path, "output")
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    if first.lstrip().startswith("{"):
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UsageError(f"{path}, line {number}: not a JSON record ({exc.msg})") from None
            if not isinstance(record, dict) or "path" not in record:
                raise UsageError(f"{path}, line {number}: a record needs a 'path'")
            yield record
        return
    reader = csv.DictReader(lines)
    if "path" not in (reader.fieldnames or []):
        raise UsageError(f"{path} is neither JSONL records nor a CSV with a 'path' column")
    for row in reader:
        record: dict[str, Any] = _decoded(dict(row))
        for name in ("confidence", "score", "decided_at_s", "analysed_s"):
            try:
                record[name] = float(record[name]) if record.get(name) not in (None, "") else None
            except ValueError:
                record[name] = None
        yield record


def _decoded(record: dict[str, Any]) -> dict[str, Any]:
    """*record* with the fields a CSV or Parquet output holds as JSON text decoded."""
    for name in ("evidence", "notes", "transcript"):
        if isinstance(record.get(name), str) and record[name]:
            try:
                record[name] = json.loads(record[name])
            except json.JSONDecodeError:
                pass
    return record


PART_NAME = re.compile(r"part-(\d+)-(\d+)-.*-(\d+)\.parquet$")
"""``ParquetRecordWriter``'s part names: part-<pid>-<start time>-<tag>-<number>.parquet."""


def _part_order(part: Path) -> tuple:
    """Parts in the order they were written: by their run's start time, then number (a
    resumed run's parts come after the first run's, whatever the process ids)."""
    match = PART_NAME.search(part.name)
    if match is None:
        return (1, part.name)
    pid, started, number = (int(g) for g in match.groups())
    return (0, started, pid, number)


def _read_parquet(folder: Path) -> Iterator[dict[str, Any]]:
    """The records of ``classify -o OUT.parquet``'s parts, part by part."""
    parts = sorted(folder.glob("part-*.parquet"), key=_part_order)
    if not parts:
        raise UsageError(
            f"{folder} is a folder without Parquet parts (part-*.parquet): review and discover read "
            "a JSONL or CSV output, or the folder classify -o OUT.parquet writes"
        )
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UsageError(
            f"{folder} is a Parquet output, which needs pyarrow: pip install 'audio-classifier[cluster]' "
            "(from a checkout: pip install '.[cluster]')"
        ) from None
    for part in parts:
        try:
            rows = pq.read_table(part).to_pylist()
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds
            raise UsageError(f"{part} is not a readable Parquet part ({exc})") from None
        for row in rows:
            if row.get("path") is None:
                raise UsageError(f"{part}: a record needs a 'path'")
            yield _decoded(row)


def manifest_columns(record: dict[str, Any]) -> list[str]:
    """The manifest's own columns a record carries (not the decision's)."""
    return [k for k in record if k not in DECISION_FIELDS and k not in ("path", "hold", "peaks")]


class ReviewStore:
    """The review database. Thread-safe (one SQLAlchemy engine; short transactions)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UsageError(
                f"cannot make the review database's folder {self.path.parent}: {exc.strerror}"
            ) from None
        self.engine = sa.create_engine(f"sqlite:///{self.path}", future=True)

        @sa.event.listens_for(self.engine, "connect")
        def _pragmas(connection, _record) -> None:
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        try:
            metadata.create_all(self.engine)
            with self.engine.begin() as connection:
                found = connection.execute(sa.select(meta.c.value).where(meta.c.key == "version")).scalar()
                if found is None:
                    connection.execute(meta.insert().values(key="version", value=str(SCHEMA_VERSION)))
                elif found != str(SCHEMA_VERSION):
                    raise UsageError(
                        f"{self.path} is a review database of version {found}; this program reads "
                        f"version {SCHEMA_VERSION}: use another --db"
                    )
        except sa.exc.DatabaseError as exc:
            raise UsageError(f"{self.path} is not a review database ({exc.orig})") from None

    def close(self) -> None:
        self.engine.dispose()

    # -- loading -----------------------------------------------------------------------------

    def load(self, output: str | os.PathLike[str], *, manifest_label: str = "label") -> tuple[int, int]:
        """Add the records of *output* not yet here (a manifest column *manifest_label*, as
        ``evaluate`` writes it, is the label the classifier is checked against). Returns
        (records in the output, records added)."""
        total = added = 0
        seen: dict[
            str, int
        ] = {}  # identity -> records with it so far (a repeated row is a record of its own)
        for chunk in _chunks(read_output(Path(output)), LOAD_CHUNK):
            total += len(chunk)
            rows = []
            for record in chunk:
                columns = manifest_columns(record)
                # a manifest column named like a decision field is carried as manifest_<name>
                given = record.get(f"manifest_{manifest_label}")
                if given is None and manifest_label not in DECISION_FIELDS:
                    given = record.get(manifest_label)
                given = given if given in LABELS else None
                priority, reasons = priority_of(record, given)
                identity = json.dumps(record_identity(record, columns), ensure_ascii=False)
                seen[identity] = seen.get(identity, 0) + 1
                rows.append(
                    {
                        "identity": f"{identity}#{seen[identity]}",
                        "path": str(record["path"]),
                        "label": record.get("label"),
                        "confidence": record.get("confidence"),
                        "action": record.get("action"),
                        "manifest_label": given,
                        "priority": priority,
                        "reasons": json.dumps(reasons),
                        "record": json.dumps(record, ensure_ascii=False),
                    }
                )
            with self.engine.begin() as connection:
                statement = sa.dialects.sqlite.insert(records).on_conflict_do_nothing(
                    index_elements=["identity"]
                )
                added += connection.execute(statement, rows).rowcount
        return total, added

    # -- the queue ---------------------------------------------------------------------------

    def _where(self, filters: Filters) -> list[Any]:
        clauses: list[Any] = []
        if filters.label:
            clauses.append(records.c.label == filters.label)
        if filters.action:
            clauses.append(records.c.action == filters.action)
        if filters.min_confidence is not None:
            clauses.append(records.c.confidence >= filters.min_confidence)
        if filters.max_confidence is not None:
            clauses.append(records.c.confidence <= filters.max_confidence)
        if filters.column and filters.value is not None:
            clauses.append(
                sa.func.json_extract(records.c.record, "$." + _json_key(filters.column)) == filters.value
            )
        if filters.reviewed is not None:
            has = sa.exists().where(corrections.c.record_id == records.c.id)
            clauses.append(has if filters.reviewed else ~has)
        return clauses

    def page(self, filters: Filters, offset: int = 0, limit: int = 50) -> tuple[int, list[dict[str, Any]]]:
        """(records matching *filters*, the page from *offset*): most in need first."""
        where = self._where(filters)
        with self.engine.connect() as connection:
            total = connection.execute(sa.select(sa.func.count()).select_from(records).where(*where)).scalar()
            rows = connection.execute(
                sa.select(
                    records.c.id,
                    records.c.path,
                    records.c.label,
                    records.c.confidence,
                    records.c.action,
                    records.c.manifest_label,
                    records.c.priority,
                    records.c.reasons,
                )
                .where(*where)
                .order_by(records.c.priority.desc(), records.c.id)
                .offset(offset)
                .limit(limit)
            ).all()
            latest = self._latest(connection, [r.id for r in rows])
        return total, [
            {
                "id": r.id,
                "path": r.path,
                "label": r.label,
                "confidence": r.confidence,
                "action": r.action,
                "manifest_label": r.manifest_label,
                "priority": r.priority,
                "reasons": json.loads(r.reasons),
                "corrected": latest.get(r.id),
            }
            for r in rows
        ]

    def _latest(self, connection: sa.Connection, ids: list[int]) -> dict[int, str]:
        """The latest correction's label of each record of *ids* that has one."""
        if not ids:
            return {}
        newest = (
            sa.select(corrections.c.record_id, sa.func.max(corrections.c.id).label("id"))
            .where(corrections.c.record_id.in_(ids))
            .group_by(corrections.c.record_id)
            .subquery()
        )
        found = connection.execute(
            sa.select(corrections.c.record_id, corrections.c.label).join(
                newest, corrections.c.id == newest.c.id
            )
        ).all()
        return dict(found)

    def record(self, record_id: int) -> dict[str, Any] | None:
        """One record with its corrections and actions, or ``None``."""
        with self.engine.connect() as connection:
            row = connection.execute(sa.select(records).where(records.c.id == record_id)).first()
            if row is None:
                return None
            history = connection.execute(
                sa.select(corrections).where(corrections.c.record_id == record_id).order_by(corrections.c.id)
            ).all()
            done = connection.execute(
                sa.select(actions).where(actions.c.record_id == record_id).order_by(actions.c.id)
            ).all()
        return {
            "id": row.id,
            "path": row.path,
            "manifest_label": row.manifest_label,
            "priority": row.priority,
            "reasons": json.loads(row.reasons),
            "record": json.loads(row.record),
            "corrections": [
                {"label": c.label, "reviewer": c.reviewer, "note": c.note, "at": _iso(c.at)} for c in history
            ],
            "actions": [
                {
                    "kind": a.kind,
                    "label": a.label,
                    "detail": json.loads(a.detail),
                    "reviewer": a.reviewer,
                    "at": _iso(a.at),
                }
                for a in done
            ],
        }

    def all_records(self) -> list[tuple[int, dict[str, Any]]]:
        """Every record with its id, in the output's order (what discovery reads)."""
        with self.engine.connect() as connection:
            rows = connection.execute(sa.select(records.c.id, records.c.record).order_by(records.c.id)).all()
        return [(row.id, json.loads(row.record)) for row in rows]

    def correct_many(
        self, record_ids: list[int], label: str, *, reviewer: str, note: str | None = None
    ) -> int:
        """One verdict on several records (a discovered group); returns how many exist."""
        _check_label(label)
        reviewer = _check_reviewer(reviewer)
        now = datetime.now(UTC)
        with self.engine.begin() as connection:
            known = [
                i
                for (i,) in connection.execute(
                    sa.select(records.c.id).where(records.c.id.in_(record_ids))
                ).all()
            ]
            if known:
                connection.execute(
                    corrections.insert(),
                    [
                        {
                            "record_id": i,
                            "label": label,
                            "reviewer": reviewer,
                            "note": note or None,
                            "at": now,
                        }
                        for i in known
                    ],
                )
        return len(known)

    def paths(self) -> dict[int, str]:
        """Every record's id and path: what the page may play."""
        with self.engine.connect() as connection:
            return dict(connection.execute(sa.select(records.c.id, records.c.path)).all())

    def path_of(self, record_id: int) -> str | None:
        with self.engine.connect() as connection:
            return connection.execute(sa.select(records.c.path).where(records.c.id == record_id)).scalar()

    # -- corrections and actions -----------------------------------------------------------

    def correct(self, record_id: int, label: str, *, reviewer: str, note: str | None = None) -> None:
        """A reviewer's verdict on a record (the classifier's own label: a confirmation)."""
        _check_label(label)
        reviewer = _check_reviewer(reviewer)
        with self.engine.begin() as connection:
            if connection.execute(sa.select(records.c.id).where(records.c.id == record_id)).scalar() is None:
                raise KeyError(record_id)
            connection.execute(
                corrections.insert().values(
                    record_id=record_id,
                    label=label,
                    reviewer=reviewer,
                    note=note or None,
                    at=datetime.now(UTC),
                )
            )

    def act(self, record_id: int, kind: str, label: str, detail: dict[str, Any], *, reviewer: str) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                actions.insert().values(
                    record_id=record_id,
                    kind=kind,
                    label=label,
                    detail=json.dumps(detail, ensure_ascii=False),
                    reviewer=_check_reviewer(reviewer),
                    at=datetime.now(UTC),
                )
            )

    def verdict(self, record_id: int) -> str | None:
        """The label a person gave the record last, if any."""
        with self.engine.connect() as connection:
            return self._latest(connection, [record_id]).get(record_id)

    # -- what the corrections add up to -----------------------------------------------------

    def labelled(self) -> Iterator[tuple[str, str, str]]:
        """(path, the reviewed label, reviewer) of every reviewed record, its latest verdict."""
        with self.engine.connect() as connection:
            newest = (
                sa.select(corrections.c.record_id, sa.func.max(corrections.c.id).label("id"))
                .group_by(corrections.c.record_id)
                .subquery()
            )
            rows = connection.execute(
                sa.select(records.c.path, corrections.c.label, corrections.c.reviewer)
                .join(newest, newest.c.record_id == records.c.id)
                .join(corrections, corrections.c.id == newest.c.id)
                .order_by(records.c.id)
            )
            yield from rows

    def export(self, handle: TextIO, audio_root: Path | None = None) -> int:
        """Write a labelled manifest (``path,label,reviewer``) of the reviewed records to
        *handle*: what ``audio-classifier evaluate`` reads. Relative paths are written under
        *audio_root* (absolute), so the manifest works wherever it is saved; without one
        they stay as the output had them. Returns the rows written."""
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "reviewer"])
        count = 0
        for path, label, reviewer in self.labelled():
            if audio_root is not None and not Path(path).is_absolute():
                path = str((audio_root / path).resolve())
            writer.writerow([path, label, reviewer])
            count += 1
        return count

    def agreement(self) -> dict[str, Any]:
        """How often reviewers agree with each other (on records two or more reviewed, each
        reviewer's latest verdict) and with the classifier."""
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(
                    corrections.c.record_id, corrections.c.reviewer, corrections.c.label, records.c.label
                )
                .join(records, records.c.id == corrections.c.record_id)
                .order_by(corrections.c.id)
            ).all()
        latest: dict[tuple[int, str], str] = {}
        classifier: dict[int, str | None] = {}
        for record_id, reviewer, label, decided in rows:
            latest[(record_id, reviewer)] = label
            classifier[record_id] = decided
        by_record: dict[int, list[str]] = {}
        for (record_id, _), label in latest.items():
            by_record.setdefault(record_id, []).append(label)
        pairs = agree = 0
        for labels in by_record.values():
            for i in range(len(labels)):
                for j in range(i + 1, len(labels)):
                    pairs += 1
                    agree += labels[i] == labels[j]
        with_classifier = [label == classifier[record_id] for (record_id, _), label in latest.items()]
        return {
            "reviewed_records": len(by_record),
            "verdicts": len(latest),
            "reviewer_pairs": pairs,
            "between_reviewers": round(agree / pairs, 4) if pairs else None,
            "with_classifier": round(sum(with_classifier) / len(with_classifier), 4)
            if with_classifier
            else None,
        }


def _check_label(label: str) -> None:
    if label not in LABELS:
        raise UsageError(f"unknown label {label!r}")


def _check_reviewer(reviewer: str) -> str:
    reviewer = (reviewer or "").strip()
    if not reviewer or len(reviewer) > 200 or any(ord(c) < 32 for c in reviewer):
        raise UsageError("a reviewer name is needed (at most 200 printable characters)")
    return reviewer


def _json_key(column: str) -> str:
    """A manifest column as a JSON path member (quoted: names may hold dots or spaces)."""
    if '"' in column or "\\" in column:
        raise UsageError(f"unusable column name {column!r}")
    return f'"{column}"'


def _iso(value: datetime) -> str:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat(timespec="seconds")


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
