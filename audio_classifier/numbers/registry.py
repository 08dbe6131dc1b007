"""The registry API: import lead lists, record outcomes, mark numbers, explain and export.

One :class:`Registry` per database: a file path (SQLite, in WAL mode) or a SQLAlchemy URL
(``postgresql+psycopg://...``). Opening it brings its schema to the newest migration.
Everything that writes is idempotent where the issue of a rerun arises: importing a file
again adds nothing, recording an output again adds no event.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ..csvtext import read_text
from ..errors import ConfigError, UsageError
from ..labels import LABELS
from . import schema
from .phone import DEFAULT_REGION, InvalidNumber, Normaliser
from .policy import ORIGINS, Outcome, Policy, State

DB_ENV = "AUDIO_CLASSIFIER_NUMBERS_DB"
"""The registry database when ``--db`` is not given (a path or a SQLAlchemy URL)."""
DB_NAME = "numbers.sqlite"
CHUNK = 5000
"""Numbers per query or insert batch (under SQLite's bound-parameter limit)."""
MIGRATIONS = Path(__file__).resolve().parent / "migrations"


def default_database() -> str:
    """``$AUDIO_CLASSIFIER_NUMBERS_DB``, else ``numbers.sqlite`` in the user's data folder."""
    from ..samples import data_dir

    return os.environ.get(DB_ENV) or str(data_dir() / DB_NAME)


def engine_for(database: str) -> sa.Engine:
    """An engine for a path (SQLite; WAL, foreign keys on) or a SQLAlchemy URL."""
    if "://" in database:
        try:
            return sa.create_engine(database, future=True)
        except (sa.exc.ArgumentError, ModuleNotFoundError) as exc:
            raise ConfigError(f"database URL {database!r}: {exc}") from None
    path = Path(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(f"sqlite:///{path}", future=True)

    @sa.event.listens_for(engine, "connect")
    def _pragmas(connection, _record) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


def _utc(value: datetime) -> datetime:
    """SQLite hands datetimes back without their zone: they were stored in UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _chunks(values: Sequence, size: int = CHUNK) -> Iterator[Sequence]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class ImportResult:
    rows: int = 0
    accepted: int = 0
    new_numbers: int = 0
    new_entries: int = 0
    rejected: dict[str, int] = field(default_factory=dict)
    """Rejected rows by reason class (invalid, duplicate, blocked, ...)."""
    accepted_file: Path | None = None
    rejected_file: Path | None = None


@dataclass
class RecordResult:
    added: int = 0
    already: int = 0
    skipped: dict[str, int] = field(default_factory=dict)


class Registry:
    """The number registry on one database (see the module)."""

    def __init__(
        self, database: str | None = None, *, policy: Policy | None = None, region: str = DEFAULT_REGION
    ) -> None:
        self.database = database or default_database()
        self.engine = engine_for(self.database)
        self.policy = policy or Policy.load()
        self.region = region
        self._normaliser = Normaliser(region)
        self.migrate()

    def migrate(self) -> None:
        """Bring the schema to the newest migration (Alembic)."""
        from alembic import command
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        try:
            with self.engine.begin() as connection:
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
        except sa.exc.OperationalError as exc:
            raise ConfigError(f"cannot open the registry {self.database}: {exc.orig}") from None

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- numbers and their states ------------------------------------------------------------

    def normalise(self, text: str) -> str:
        """*text* as E.164 in this registry's region; raises ``InvalidNumber``."""
        return self._normaliser(text)

    def _ids(self, connection: sa.Connection, e164s: Sequence[str], create: bool) -> dict[str, int]:
        table = schema.numbers
        ids: dict[str, int] = {}
        for chunk in _chunks(list(e164s)):
            rows = connection.execute(sa.select(table.c.e164, table.c.id).where(table.c.e164.in_(chunk)))
            ids.update(dict(rows.all()))
        missing = [e for e in dict.fromkeys(e164s) if e not in ids]
        if create and missing:
            now = datetime.now(UTC)
            for chunk in _chunks(missing):
                connection.execute(table.insert(), [{"e164": e, "first_seen": now} for e in chunk])
                rows = connection.execute(sa.select(table.c.e164, table.c.id).where(table.c.e164.in_(chunk)))
                ids.update(dict(rows.all()))
        return ids

    def _outcomes(self, connection: sa.Connection, number_ids: Sequence[int]) -> dict[int, list[Outcome]]:
        events = schema.events
        found: dict[int, list[Outcome]] = {}
        for chunk in _chunks(list(number_ids)):
            rows = connection.execute(
                sa.select(
                    events.c.number_id,
                    events.c.id,
                    events.c.label,
                    events.c.confidence,
                    events.c.origin,
                    events.c.at,
                    events.c.agent,
                ).where(events.c.number_id.in_(chunk))
            )
            for number_id, *values in rows:
                event_id, label, confidence, origin, at, agent = values
                found.setdefault(number_id, []).append(
                    Outcome(event_id, label, confidence, origin, _utc(at), agent)
                )
        return found

    def _hand_blocked(self, connection: sa.Connection, e164s: Sequence[str]) -> dict[str, str]:
        """Blocklist entries (by hash) for *e164s*: e164 -> reason."""
        by_hash = {_sha256(e): e for e in e164s}
        table = schema.blocklist
        found: dict[str, str] = {}
        for chunk in _chunks(list(by_hash)):
            rows = connection.execute(
                sa.select(table.c.e164_sha256, table.c.reason).where(table.c.e164_sha256.in_(chunk))
            )
            for digest, reason in rows:
                found[by_hash[digest]] = reason
        return found

    def states(self, e164s: Sequence[str]) -> dict[str, State]:
        """The state of each of *e164s* (unknown numbers are ``active``)."""
        with self.engine.connect() as connection:
            return self._states(connection, e164s)

    def _states(self, connection: sa.Connection, e164s: Sequence[str]) -> dict[str, State]:
        ids = self._ids(connection, e164s, create=False)
        outcomes = self._outcomes(connection, list(ids.values()))
        hand = self._hand_blocked(connection, e164s)
        states = {}
        for e164 in e164s:
            if e164 in hand:
                states[e164] = State("blocked", f"on the blocklist: {hand[e164]}")
            else:
                states[e164] = self.policy.state(outcomes.get(ids.get(e164, -1), []))
        return states

    def show(self, number: str) -> tuple[str, State, list[dict[str, Any]]]:
        """(E.164, state, the outcomes in time order) of *number*."""
        e164 = self.normalise(number)
        with self.engine.connect() as connection:
            state = self._states(connection, [e164])[e164]
            ids = self._ids(connection, [e164], create=False)
            history = []
            if e164 in ids:
                events = schema.events
                rows = connection.execute(
                    sa.select(events)
                    .where(events.c.number_id == ids[e164])
                    .order_by(events.c.at, events.c.id)
                )
                history = [{**row._asdict(), "at": _utc(row.at).isoformat()} for row in rows]
        return e164, state, history

    # -- outcomes ---------------------------------------------------------------------------

    def _add_events(self, connection: sa.Connection, rows: list[dict[str, Any]]) -> int:
        """Insert outcome rows whose key is new; returns how many were new."""
        if not rows:
            return 0
        events = schema.events
        keys = [r["key"] for r in rows]
        present: set[str] = set()
        for chunk in _chunks(keys):
            present.update(
                connection.execute(sa.select(events.c.key).where(events.c.key.in_(chunk))).scalars()
            )
        fresh = list({r["key"]: r for r in rows if r["key"] not in present}.values())
        for chunk in _chunks(fresh):
            connection.execute(events.insert(), list(chunk))
        return len(fresh)

    def mark(self, number: str, label: str, *, by: str, note: str | None = None) -> State:
        """An agent's mark: what the agent heard on a call to *number*. Returns its new state."""
        if label not in LABELS:
            raise UsageError(f"unknown label {label!r}: see 'audio-classifier labels'")
        if not by.strip():
            raise UsageError("an agent mark needs the agent (--by)")
        e164 = self.normalise(number)
        at = datetime.now(UTC)
        with self.engine.begin() as connection:
            number_id = self._ids(connection, [e164], create=True)[e164]
            key = _sha256(f"agent|{e164}|{label}|{by}|{at.isoformat()}")
            self._add_events(
                connection,
                [
                    {
                        "number_id": number_id,
                        "label": label,
                        "confidence": 1.0,
                        "action": LABELS[label].action,
                        "origin": "agent",
                        "agent": by,
                        "note": note,
                        "at": at,
                        "key": key,
                    }
                ],
            )
            return self._states(connection, [e164])[e164]

    def record(self, path: str | Path, *, origin: str = "classifier") -> RecordResult:
        """Outcomes from a ``classify`` or ``evaluate`` output (JSONL or CSV) whose records
        carry a ``number`` (the manifest's column). Records without one, failed inputs and
        malformed numbers are counted and skipped; recording a file again adds nothing."""
        if origin not in ORIGINS:
            raise UsageError(f"origin {origin!r}: one of {', '.join(ORIGINS)}")
        result = RecordResult()
        pending: list[tuple[str, dict[str, Any]]] = []

        def skip(reason: str) -> None:
            result.skipped[reason] = result.skipped.get(reason, 0) + 1

        for record in _read_records(Path(path)):
            if not record.get("number"):
                skip("no number")
                continue
            if record.get("error") or not record.get("label"):
                skip("failed input")
                continue
            if record["label"] not in LABELS:
                skip("unknown label")
                continue
            try:
                e164 = self.normalise(str(record["number"]))
            except InvalidNumber:
                skip("invalid number")
                continue
            pending.append((e164, record))
        at = datetime.now(UTC)
        with self.engine.begin() as connection:
            ids = self._ids(connection, [e for e, _ in pending], create=True)
            rows = []
            for e164, record in pending:
                confidence = _float(record.get("confidence"))
                recording = str(record.get("path") or "") or None
                call_id = str(record.get("call_id") or "") or None
                key = _sha256(
                    f"{origin}|{e164}|{recording}|{call_id}|{record['label']}|{record.get('decided_at_s')}"
                )
                rows.append(
                    {
                        "number_id": ids[e164],
                        "label": record["label"],
                        "confidence": confidence,
                        "action": record.get("action") or LABELS[record["label"]].action,
                        "origin": origin,
                        "recording": recording,
                        "call_id": call_id,
                        "at": at,
                        "key": key,
                    }
                )
            result.added = self._add_events(connection, rows)
            result.already = len({r["key"] for r in rows}) - result.added
        return result

    # -- imports ----------------------------------------------------------------------------

    def import_leads(
        self,
        path: str | Path,
        *,
        source: str,
        list_name: str,
        accepted: str | Path | None = None,
        rejected: str | Path | None = None,
    ) -> ImportResult:
        """Import a lead file (CSV with a ``number`` column; other columns are kept) into
        *list_name* from *source*: every row checked, the accepted rows and the rejected ones
        (with a reason) written beside it (or to *accepted* / *rejected*)."""
        path = Path(path)
        if not source.strip() or not list_name.strip():
            raise UsageError("an import needs a source (the vendor) and a list name")
        data_sha = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
        reader = csv.DictReader(io.StringIO(read_text(path, "lead file"), newline=""))
        columns = [c for c in (reader.fieldnames or []) if c]
        if "number" not in columns:
            raise UsageError(
                f"lead file {path} has no 'number' column (columns: {', '.join(columns) or 'none'})"
            )
        result = ImportResult()
        rows: list[tuple[int, dict[str, str], str | None, str | None]] = []  # (line, row, e164, reason)
        first_row: dict[str, int] = {}
        try:
            for line, row in enumerate(reader, start=2):
                row = {k: (v or "") for k, v in row.items() if k}
                try:
                    e164 = self.normalise(row.get("number", ""))
                except InvalidNumber as exc:
                    rows.append((line, row, None, f"invalid: {exc}"))
                    continue
                if e164 in first_row:
                    rows.append((line, row, e164, f"duplicate of line {first_row[e164]}"))
                    continue
                first_row[e164] = line
                rows.append((line, row, e164, None))
        except csv.Error as exc:
            raise UsageError(f"lead file {path}, line {reader.line_num}: {exc}") from None
        result.rows = len(rows)
        candidates = [e for _, _, e, reason in rows if e and reason is None]
        now = datetime.now(UTC)
        with self.engine.begin() as connection:
            known = self._ids(connection, candidates, create=False)
            states = self._states(connection, candidates)
            blocked = {e: s for e, s in states.items() if s.status == "blocked"}
            allowed = [e for e in candidates if e not in blocked]
            ids = self._ids(connection, allowed, create=True)
            result.new_numbers = len([e for e in allowed if e not in known])
            import_id = self._import_row(connection, path, data_sha, source, list_name, now)
            entries = schema.list_entries
            on_list: set[int] = set()
            for chunk in _chunks([ids[e] for e in allowed]):
                on_list.update(
                    connection.execute(
                        sa.select(entries.c.number_id).where(
                            entries.c.list_name == list_name, entries.c.number_id.in_(chunk)
                        )
                    ).scalars()
                )
            by_e164 = {e: row for _, row, e, reason in rows if e and reason is None}
            new_entries = [
                {
                    "list_name": list_name,
                    "number_id": ids[e],
                    "source": source,
                    "import_id": import_id,
                    "extra": json.dumps(
                        {k: v for k, v in by_e164[e].items() if k != "number"}, ensure_ascii=False
                    ),
                    "added": now,
                }
                for e in allowed
                if ids[e] not in on_list
            ]
            for chunk in _chunks(new_entries):
                connection.execute(entries.insert(), list(chunk))
            result.new_entries = len(new_entries)
            final = []
            for line, row, e164, reason in rows:
                if reason is None and e164 in blocked:
                    reason = f"blocked: {blocked[e164].rule}"
                final.append((line, row, e164, reason, states.get(e164) if e164 else None))
            result.accepted = sum(1 for *_, reason, _ in final if reason is None)
            for *_, reason, _ in final:
                if reason is not None:
                    kind = reason.split(":")[0].split(" of ")[0]
                    result.rejected[kind] = result.rejected.get(kind, 0) + 1
            connection.execute(
                schema.imports.update()
                .where(schema.imports.c.id == import_id)
                .values(rows=result.rows, accepted=result.accepted, rejected=result.rows - result.accepted)
            )
        result.accepted_file = Path(accepted) if accepted else path.with_suffix(".accepted.csv")
        result.rejected_file = Path(rejected) if rejected else path.with_suffix(".rejected.csv")
        _write_rows(
            result.accepted_file,
            [*columns, "e164", "state"],
            ({**row, "e164": e, "state": s.status} for _, row, e, reason, s in final if reason is None),
        )
        _write_rows(
            result.rejected_file,
            [*columns, "line", "reason"],
            (
                {**row, "line": line, "reason": reason}
                for line, row, _, reason, _ in final
                if reason is not None
            ),
        )
        return result

    def _import_row(
        self, connection: sa.Connection, path: Path, sha: str, source: str, list_name: str, now: datetime
    ) -> int:
        imports = schema.imports
        found = connection.execute(
            sa.select(imports.c.id).where(
                imports.c.file_sha256 == sha, imports.c.list_name == list_name, imports.c.source == source
            )
        ).scalar()
        if found is not None:
            return found
        return connection.execute(
            imports.insert().values(
                list_name=list_name,
                source=source,
                file_name=path.name,
                file_sha256=sha,
                at=now,
                rows=0,
                accepted=0,
                rejected=0,
            )
        ).inserted_primary_key[0]

    # -- exports ----------------------------------------------------------------------------

    def list_numbers(self, list_name: str, *, active: bool = False) -> list[tuple[str, str, State]]:
        """(E.164, source, state) of the numbers on *list_name*; with *active*, only those a
        dialer may call now."""
        entries, numbers = schema.list_entries, schema.numbers
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(numbers.c.e164, entries.c.source)
                .join(numbers, numbers.c.id == entries.c.number_id)
                .where(entries.c.list_name == list_name)
                .order_by(entries.c.id)
            ).all()
            states = self._states(connection, [e for e, _ in rows])
        now = datetime.now(UTC)
        return [(e, source, states[e]) for e, source in rows if not active or states[e].callable_at(now)]

    def blocked(self) -> list[tuple[str, State]]:
        """Every number the registry knows whose state is ``blocked``, with its rule."""
        with self.engine.connect() as connection:
            e164s = list(
                connection.execute(sa.select(schema.numbers.c.e164).order_by(schema.numbers.c.id)).scalars()
            )
            states = self._states(connection, e164s)
        return [(e, s) for e, s in states.items() if s.status == "blocked"]


def _float(value: Any) -> float | None:
    try:
        return None if value in (None, "") else float(value)
    except (TypeError, ValueError):
        return None


def _read_records(path: Path) -> Iterable[dict[str, Any]]:
    """The records of a classify/evaluate output, JSONL or CSV (by extension)."""
    text = read_text(path, "output file")
    if path.suffix.lower() == ".csv":
        try:
            yield from csv.DictReader(io.StringIO(text, newline=""))
        except csv.Error as exc:
            raise UsageError(f"{path}: {exc}") from None
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise UsageError(
                f"line {number} of {path} is not JSON: not an output of classify or evaluate"
            ) from None
        if isinstance(record, dict):
            yield record


def _write_rows(path: Path, columns: list[str], rows: Iterable[dict[str, Any]]) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    with open(temporary, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    os.replace(temporary, path)
