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
import re
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ..csvtext import first_undecodable_line, not_encoded, open_text, read_text
from ..errors import ConfigError, UsageError
from ..labels import LABELS
from . import schema
from .phone import DEFAULT_REGION, InvalidNumber, Normaliser
from .policy import ORIGINS, Outcome, Policy, State

DB_ENV = "AUDIO_CLASSIFIER_NUMBERS_DB"
"""The registry database when ``--db`` is not given (a path or a SQLAlchemy URL)."""
DB_NAME = "numbers.sqlite"
REPORT_GROUPS = ("source", "list", "import", "month")
Z_95 = 1.959964
"""The normal quantile of a two-sided 95 % interval."""


def wilson_interval(k: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a rate *k* / *n* (sound for small counts and rates near 0)."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * ((p * (1 - p) / n + z * z / (4 * n * n)) ** 0.5) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


NAME_CHARS = 200
"""Longest list name, source, agent or call id (the schema's String(200) columns)."""
SQLITE_CACHE_KIB = 65536
CHUNK = 5000
"""Numbers per query or insert batch (under SQLite's bound-parameter limit)."""
HEAD_REVISION = "0001"
"""The newest migration in ``migrations/versions`` (a test checks that they agree)."""
MIGRATION_LOCK = threading.Lock()
"""Alembic keeps its migration context in module globals: one migration at a time per process."""
MIGRATION_LOCK_KEY = 0x6E756D62
"""PostgreSQL advisory lock taken while migrating ('numb')."""


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
            shown = sa.engine.make_url(database).render_as_string(hide_password=True)
            hint = ""
            if isinstance(exc, ModuleNotFoundError) and exc.name and exc.name.startswith("psycopg"):
                hint = " (PostgreSQL needs its driver: pip install 'audio-classifier[postgres]')"
            raise ConfigError(f"database URL {shown!r}: {exc}{hint}") from None
    path = Path(database)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(f"cannot make the registry's folder {path.parent}: {exc.strerror}") from None
    engine = sa.create_engine(f"sqlite:///{path}", future=True)

    @sa.event.listens_for(engine, "connect")
    def _pragmas(connection, _record) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")  # first: the next one may wait for a lock
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        # WAL with NORMAL sync stays consistent after a crash (the last commits may be lost
        # on power failure); a 64 MB page cache keeps a million-number index in memory
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.close()

    return engine


def _redact(database: str) -> str:
    """A database path or URL as it may be shown: without a password."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", database)


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
        self._normaliser = Normaliser(region)
        self.region = self._normaliser.region
        self.migrate()

    def migrate(self) -> None:
        """Bring the schema to the newest migration (Alembic). A database already there is
        left alone without starting Alembic; migrations of one database never run at once:
        a lock per process, and across processes an advisory lock on PostgreSQL or a lock
        on a file beside a SQLite database (two server workers open a new one together).
        A SQLite database is first opened under that lock too: turning a new file to WAL
        needs it alone, and a process that found it busy failed with "database is locked"."""
        from alembic import command
        from alembic.config import Config

        try:
            with self._file_lock():
                if self._revision() == HEAD_REVISION:
                    return
                with MIGRATION_LOCK, self.engine.begin() as connection:
                    if connection.dialect.name == "postgresql":
                        connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
                    config = Config()
                    scripts = str(Path(__file__).resolve().parent / "migrations")
                    config.set_main_option("script_location", scripts)
                    config.attributes["connection"] = connection
                    command.upgrade(config, "head")
        except sa.exc.OperationalError as exc:
            raise ConfigError(f"cannot open the registry {self._shown()}: {exc.orig}") from None

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        """An exclusive lock on ``<database>.lock`` for a SQLite file database, held while the
        database is first opened, checked and migrated. Nothing for other databases, without
        ``fcntl``, or where the lock file cannot be made or locked (a folder this user may
        not write): the lock only keeps processes creating one database from colliding, so
        a database that is already there opens without it. Opened read-only, so another
        user's lock file serves as well."""
        url = self.engine.url
        if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
            yield
            return
        try:
            import fcntl
        except ImportError:  # not POSIX: one process at a time is the user's to ensure
            yield
            return
        try:
            descriptor = os.open(f"{url.database}.lock", os.O_RDONLY | os.O_CREAT, 0o666)
        except OSError:
            yield
            return
        try:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX)
            except OSError:  # no locks on this file system
                yield
                return
            try:
                yield
            finally:
                fcntl.flock(descriptor, fcntl.LOCK_UN)
        finally:
            os.close(descriptor)

    def _revision(self) -> str | None:
        """The schema's migration revision, None for an empty database."""
        with self.engine.connect() as connection:
            if not sa.inspect(connection).has_table("alembic_version"):
                return None
            return connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()

    def _shown(self) -> str:
        """The database as it may be shown: a URL without its password."""
        return _redact(self.database)

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
        ids = dict(_select_in(connection, "SELECT e164, id FROM numbers WHERE e164 IN ({})", list(e164s)))
        missing = [e for e in dict.fromkeys(e164s) if e not in ids]
        if create and missing:
            now = _bind(connection, schema.numbers.c.first_seen, datetime.now(UTC))
            # another writer may add the same number meanwhile: theirs stands
            _insert(
                connection, "numbers", ("e164", "first_seen"), [(e, now) for e in missing], conflict="e164"
            )
            ids.update(_select_in(connection, "SELECT e164, id FROM numbers WHERE e164 IN ({})", missing))
        return ids

    def _outcomes(self, connection: sa.Connection, number_ids: Sequence[int]) -> dict[int, list[Outcome]]:
        found: dict[int, list[Outcome]] = {}
        at_of = _result(connection, schema.events.c.at)
        rows = _select_in(
            connection,
            "SELECT number_id, id, label, confidence, origin, at, agent FROM events WHERE number_id IN ({})",
            list(number_ids),
        )
        for number_id, event_id, label, confidence, origin, at, agent in rows:
            found.setdefault(number_id, []).append(
                Outcome(event_id, label, confidence, origin, _utc(at_of(at)), agent)
            )
        return found

    def _hand_blocked(self, connection: sa.Connection, e164s: Sequence[str]) -> dict[str, str]:
        """Blocklist entries (by hash) for *e164s*: e164 -> reason."""
        by_hash = {_sha256(e): e for e in e164s}
        rows = _select_in(
            connection, "SELECT e164_sha256, reason FROM blocklist WHERE e164_sha256 IN ({})", list(by_hash)
        )
        return {by_hash[digest]: reason for digest, reason in rows}

    def states(self, e164s: Sequence[str]) -> dict[str, State]:
        """The state of each of *e164s* (unknown numbers are ``active``)."""
        with self.engine.connect() as connection:
            return self._states(connection, e164s)

    def _states(
        self, connection: sa.Connection, e164s: Sequence[str], *, ids: dict[str, int] | None = None
    ) -> dict[str, State]:
        ids = self._ids(connection, e164s, create=False) if ids is None else ids
        outcomes = self._outcomes(connection, list(ids.values()))
        hand = self._hand_blocked(connection, e164s)
        states = {}
        for e164 in e164s:
            if e164 in hand:
                states[e164] = State("blocked", f"on the blocklist: {hand[e164]}")
            else:
                heard = outcomes.get(ids.get(e164, -1))
                states[e164] = self.policy.state(heard) if heard else NOTHING_HEARD
        return states

    def show(self, number: str) -> tuple[str, State, list[dict[str, Any]]]:
        """(E.164, state, the outcomes in time order) of *number*."""
        e164 = self.normalise(number)
        with self.engine.connect() as connection:
            ids = self._ids(connection, [e164], create=False)
            state = self._states(connection, [e164], ids=ids)[e164]
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

    @staticmethod
    def _event(
        number_id: int, label: str, origin: str, at: datetime, key: str, **rest: Any
    ) -> dict[str, Any]:
        """An outcome row; *rest*: confidence, action (default: the label's), recording,
        call_id, agent, note."""
        return {
            "number_id": number_id,
            "label": label,
            "origin": origin,
            "at": at,
            "key": key,
            **rest,
            "action": rest.get("action") or LABELS[label].action,
        }

    def _add_events(self, connection: sa.Connection, rows: list[dict[str, Any]]) -> int:
        """Insert outcome rows whose key is new (another writer's same outcome stands);
        returns how many were new."""
        columns = (
            "number_id",
            "label",
            "confidence",
            "action",
            "origin",
            "recording",
            "call_id",
            "agent",
            "note",
            "at",
            "key",
        )
        events = schema.events
        values = [
            tuple(_bind(connection, events.c[c], row.get(c)) if c == "at" else row.get(c) for c in columns)
            for row in {r["key"]: r for r in rows}.values()
        ]
        return _insert(connection, "events", columns, values, conflict="key")

    def mark(self, number: str, label: str, *, by: str, note: str | None = None) -> State:
        """An agent's mark: what the agent heard on a call to *number*. Returns its new state."""
        if label not in LABELS:
            raise UsageError(f"unknown label {label!r}: see 'audio-classifier labels'")
        if not by.strip() or len(by) > NAME_CHARS:
            raise UsageError(f"an agent mark needs the agent (--by), at most {NAME_CHARS} characters")
        e164 = self.normalise(number)
        at = datetime.now(UTC)
        with self.engine.begin() as connection:
            number_id = self._ids(connection, [e164], create=True)[e164]
            key = _sha256(f"agent|{e164}|{label}|{by}|{at.isoformat()}")
            event = self._event(number_id, label, "agent", at, key, confidence=1.0, agent=by, note=note)
            self._add_events(connection, [event])
            return self._states(connection, [e164])[e164]

    def add_outcome(
        self,
        number: str,
        label: str,
        *,
        origin: str,
        confidence: float | None = None,
        action: str | None = None,
        recording: str | None = None,
        call_id: str | None = None,
    ) -> bool:
        """Record one outcome (a live call's decision, a signalling result); False when the
        same outcome was recorded before: the same call id or recording, number, label and
        confidence. An outcome with neither a call id nor a recording is always a new one:
        nothing tells it apart from another call to the number with the same result.
        Raises ``InvalidNumber``, ``UsageError``."""
        if origin not in ORIGINS or label not in LABELS:
            raise UsageError(f"outcome {label!r} from {origin!r}: unknown label or origin")
        e164 = self.normalise(number)
        call_id = call_id[:NAME_CHARS] if call_id else call_id  # a client's id: kept as far as it fits
        identity = f"{recording}|{call_id}" if call_id or recording else f"call {uuid.uuid4()}"
        key = _sha256(f"{origin}|{e164}|{identity}|{label}|{confidence}")
        with self.engine.begin() as connection:
            number_id = self._ids(connection, [e164], create=True)[e164]
            event = self._event(
                number_id,
                label,
                origin,
                datetime.now(UTC),
                key,
                confidence=confidence,
                action=action,
                recording=recording,
                call_id=call_id,
            )
            return self._add_events(connection, [event]) == 1

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
                    self._event(
                        ids[e164],
                        record["label"],
                        origin,
                        at,
                        key,
                        confidence=confidence,
                        action=record.get("action"),
                        recording=recording,
                        call_id=call_id,
                    )
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
        (with a reason) written beside it (or to *accepted* / *rejected*).

        The file is read in chunks of ``IMPORT_CHUNK`` rows, all in one transaction: a file
        that turns out unreadable halfway leaves the registry and the output files as they
        were. Importing the same file again adds nothing."""
        path = Path(path)
        if not source.strip() or not list_name.strip():
            raise UsageError("an import needs a source (the vendor) and a list name")
        for what, value in (("source", source), ("list name", list_name)):
            if len(value) > NAME_CHARS:
                raise UsageError(f"the {what} is {len(value)} characters long; at most {NAME_CHARS}")
        text = open_text(path, "lead file")
        reader = csv.DictReader(text)
        try:
            columns = [c for c in (reader.fieldnames or []) if c]
        except (UnicodeDecodeError, csv.Error) as exc:
            text.close()
            raise UsageError(_unreadable(path, reader, exc)) from None
        if "number" not in columns:
            text.close()
            raise UsageError(
                f"lead file {path} has no 'number' column (columns: {', '.join(columns) or 'none'})"
            )
        result = ImportResult()
        result.accepted_file = Path(accepted) if accepted else path.with_suffix(".accepted.csv")
        result.rejected_file = Path(rejected) if rejected else path.with_suffix(".rejected.csv")
        try:
            outputs = _Outputs(
                result.accepted_file,
                [*columns, "e164", "state"],
                result.rejected_file,
                [*columns, "line", "reason"],
            )
        except OSError as exc:
            text.close()
            raise UsageError(
                f"cannot write the import's output beside {exc.filename}: {exc.strerror}"
            ) from None
        first_line: dict[int, int] = {}  # E.164 digits -> the line that brought it first
        now = datetime.now(UTC)
        try:
            with text, outputs, self.engine.begin() as connection:
                import_id = self._import_row(connection, path, _file_sha256(path), source, list_name, now)
                chunk: list[tuple[int, dict[str, str], str]] = []
                for line, row in _rows(reader, path):
                    result.rows += 1
                    if row is None:  # a field over the CSV limit: this row only
                        reason = f"unreadable: a field is larger than {FIELD_LIMIT // 1024} KiB"
                        outputs.reject({}, line, reason, result)
                        continue
                    try:
                        e164 = self.normalise(row.get("number", ""))
                    except InvalidNumber as exc:
                        outputs.reject(row, line, f"invalid: {exc}", result)
                        continue
                    key = int(e164[1:])
                    if key in first_line:
                        outputs.reject(row, line, f"duplicate of line {first_line[key]}", result)
                        continue
                    first_line[key] = line
                    chunk.append((line, row, e164))
                    if len(chunk) >= IMPORT_CHUNK:
                        self._import_chunk(
                            connection, chunk, source, list_name, import_id, now, outputs, result
                        )
                        chunk = []
                self._import_chunk(connection, chunk, source, list_name, import_id, now, outputs, result)
                connection.execute(
                    schema.imports.update()
                    .where(schema.imports.c.id == import_id)
                    .values(
                        rows=result.rows, accepted=result.accepted, rejected=result.rows - result.accepted
                    )
                )
        except BaseException:
            outputs.discard()
            raise
        return result

    def _import_chunk(
        self,
        connection: sa.Connection,
        chunk: list[tuple[int, dict[str, str], str]],
        source: str,
        list_name: str,
        import_id: int,
        now: datetime,
        outputs: _Outputs,
        result: ImportResult,
    ) -> None:
        """Check and enter one chunk of an import's rows (valid, unique within the file)."""
        if not chunk:
            return
        candidates = [e for _, _, e in chunk]
        known = self._ids(connection, candidates, create=False)
        states = self._states(connection, candidates, ids=known)
        allowed = [e for e in candidates if states[e].status != "blocked"]
        ids = {**known, **self._ids(connection, [e for e in allowed if e not in known], create=True)}
        result.new_numbers += sum(1 for e in allowed if e not in known)
        known_ids = [known[e] for e in allowed if e in known]
        on_list = {
            number_id
            for (number_id,) in _select_in(
                connection,
                f"SELECT number_id FROM list_entries WHERE list_name = {_mark(connection)} AND number_id IN ({{}})",
                known_ids,
                before=(list_name,),
            )
        }
        rows = {e: row for _, row, e in chunk}
        added = _bind(connection, schema.list_entries.c.added, now)
        new_entries = [
            (
                list_name,
                ids[e],
                source,
                import_id,
                json.dumps({k: v for k, v in rows[e].items() if k != "number"}, ensure_ascii=False),
                added,
            )
            for e in allowed
            if ids[e] not in on_list
        ]
        _insert(
            connection,
            "list_entries",
            ("list_name", "number_id", "source", "import_id", "extra", "added"),
            new_entries,
        )
        result.new_entries += len(new_entries)
        for line, row, e164 in chunk:
            state = states[e164]
            if state.status == "blocked":
                outputs.reject(row, line, f"blocked: {state.rule}", result)
            else:
                outputs.accept({**row, "e164": e164, "state": state.status}, result)

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

    # -- maintenance ------------------------------------------------------------------------

    def due(
        self, older_than: timedelta, *, list_name: str | None = None
    ) -> list[tuple[str, State, datetime | None]]:
        """Numbers to re-validate: (E.164, state, last outcome) of those whose latest outcome
        is older than *older_than*, or with none and known for longer (on *list_name* only,
        if given), oldest first."""
        cutoff = datetime.now(UTC) - older_than
        numbers, events, entries = schema.numbers, schema.events, schema.list_entries
        last = sa.select(events.c.number_id, sa.func.max(events.c.at).label("last")).group_by(
            events.c.number_id
        )
        last = last.subquery()
        query = sa.select(numbers.c.e164, numbers.c.first_seen, last.c.last).outerjoin(
            last, last.c.number_id == numbers.c.id
        )
        if list_name is not None:
            query = query.where(
                numbers.c.id.in_(sa.select(entries.c.number_id).where(entries.c.list_name == list_name))
            )
        with self.engine.connect() as connection:
            rows = [(e, _utc(first), _utc(at) if at else None) for e, first, at in connection.execute(query)]
            stale = [(e, at) for e, first, at in rows if (at or first) < cutoff]
            states = self._states(connection, [e for e, _ in stale])
        stale.sort(key=lambda item: item[1] or datetime.min.replace(tzinfo=UTC))
        return [(e, states[e], at) for e, at in stale]

    def forget(self, number: str) -> tuple[str, State, bool]:
        """Erase *number*: its history, its list entries, the number itself. A blocked number
        stays blocked by the hash of its E.164 form where the policy says so. Returns (E.164,
        the state it had, whether a hash was kept)."""
        e164 = self.normalise(number)
        with self.engine.begin() as connection:
            state = self._states(connection, [e164])[e164]
            ids = self._ids(connection, [e164], create=False)
            if e164 in ids:
                for table in (schema.events, schema.list_entries):
                    connection.execute(table.delete().where(table.c.number_id == ids[e164]))
                connection.execute(schema.numbers.delete().where(schema.numbers.c.id == ids[e164]))
            keep = state.status == "blocked" and self.policy.keep_blocked_hash
            digest = _sha256(e164)
            if keep and not self._hand_blocked(connection, [e164]):
                connection.execute(
                    schema.blocklist.insert().values(
                        e164_sha256=digest,
                        reason=f"forgotten; was blocked: {state.rule}",
                        at=datetime.now(UTC),
                    )
                )
        return e164, state, keep

    # -- reports ----------------------------------------------------------------------------

    def report(self, by: str = "source") -> dict[str, Any]:
        """Invalid numbers per *by* (``source``, ``list``, ``import`` or ``month`` the entry
        was added): entries, numbers found invalid (blocked by an outcome whose number state
        is ``invalid``: vacant, changed, ported, wrong format), other blocked ones, the
        invalid rate with its 95 % Wilson interval; and the clearance audit: blocked numbers
        that any list's ``export --active`` would still return (must be 0)."""
        if by not in REPORT_GROUPS:
            raise UsageError(f"report --by {by!r}: one of {', '.join(REPORT_GROUPS)}")
        entries, numbers, imports = schema.list_entries, schema.numbers, schema.imports
        query = (
            sa.select(
                numbers.c.e164,
                numbers.c.id,
                entries.c.list_name,
                entries.c.source,
                imports.c.file_name,
                entries.c.added,
            )
            .join(numbers, numbers.c.id == entries.c.number_id)
            .join(imports, imports.c.id == entries.c.import_id)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
            e164s = list(dict.fromkeys(r[0] for r in rows))
            states = self._states(connection, e164s)
            outcomes = self._outcomes(connection, list(dict.fromkeys(r[1] for r in rows)))
        labels = {o.id: o.label for found in outcomes.values() for o in found}
        groups: dict[str, dict[str, int]] = {}
        for e164, _, list_name, source, file_name, added in rows:
            key = {
                "source": source,
                "list": list_name,
                "import": file_name,
                "month": _utc(added).strftime("%Y-%m"),
            }[by]
            group = groups.setdefault(key, {"entries": 0, "invalid": 0, "blocked_other": 0})
            group["entries"] += 1
            state = states[e164]
            if state.status == "blocked":
                deciding = labels.get(state.outcomes[-1]) if state.outcomes else None
                invalid = deciding is not None and LABELS[deciding].number_state == "invalid"
                group["invalid" if invalid else "blocked_other"] += 1
        table = []
        for key in sorted(groups):
            group = groups[key]
            low, high = wilson_interval(group["invalid"], group["entries"])
            table.append(
                {
                    by: key,
                    **group,
                    "invalid_rate": group["invalid"] / group["entries"],
                    "ci95_low": low,
                    "ci95_high": high,
                }
            )
        lists = sorted({r[2] for r in rows})
        still_callable = {
            e
            for name in lists
            for e, _, state in self.list_numbers(name, active=True)
            if state.status == "blocked"
        }
        blocked_on_lists = sum(1 for e in e164s if states[e].status == "blocked")
        return {
            "by": by,
            "groups": table,
            "blocked_on_lists": blocked_on_lists,
            "blocked_still_callable": len(still_callable),
        }

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


def _mark(connection: sa.Connection) -> str:
    """The driver's parameter placeholder (qmark for sqlite3, format for psycopg)."""
    return "?" if connection.dialect.paramstyle == "qmark" else "%s"


def _array_mark(connection: sa.Connection) -> str:
    """The placeholder of an array parameter: binary with psycopg 3 (``%b``), which needs no
    quoting of each element; the text placeholder with another driver (psycopg2)."""
    return "%b" if connection.dialect.driver == "psycopg" else "%s"


def _select_in(
    connection: sa.Connection, sql: str, values: Sequence[Any], *, before: tuple[Any, ...] = ()
) -> list[tuple[Any, ...]]:
    """Rows of *sql* (with ``IN ({})`` where the list goes) for *values*, in batches of
    ``CHUNK``, straight through the driver: an import runs such lookups for every chunk of
    numbers, and building statements with thousands of parameters cost more than the
    queries. PostgreSQL gets one array parameter (``= ANY(%b::type[])``) instead of a list."""
    found: list[tuple[Any, ...]] = []
    postgres = connection.dialect.name == "postgresql"
    for part in _chunks(list(values)):
        if postgres:
            # sent in binary (no quoting of each element); typed, so that the column's
            # index serves the lookup (an untyped list of ints may travel as numeric[])
            kind = "int4" if part and isinstance(part[0], int) else "text"
            statement = sql.replace("IN ({})", f"= ANY({_array_mark(connection)}::{kind}[])")
            parameters = (*before, list(part))
        else:
            statement, parameters = sql.format(", ".join([_mark(connection)] * len(part))), (*before, *part)
        found += connection.exec_driver_sql(statement, parameters).all()
    return found


PG_ARRAY_TYPES = {
    "first_seen": "timestamptz",
    "added": "timestamptz",
    "at": "timestamptz",
    "number_id": "int",
    "import_id": "int",
    "confidence": "float8",
}
"""PostgreSQL types of the registry's non-text columns, for inserts from arrays (``_insert``)."""


INSERT_ROWS = 500
"""Rows per multi-row INSERT: one statement (one round trip on PostgreSQL) per this many."""


def _insert(
    connection: sa.Connection,
    table: str,
    columns: Sequence[str],
    rows: Sequence[tuple],
    conflict: str | None = None,
) -> int:
    """Insert *rows* (tuples in *columns*' order, as the driver takes them), straight through
    the driver (see ``_select_in``): multi-row INSERT statements, or on PostgreSQL one
    INSERT from arrays (``unnest``, sent in binary: text arrays in text format cost the
    client a regular expression per element) per batch. With *conflict* (a unique column), rows whose
    value is already there are skipped. Returns the rows added."""
    tail = f" ON CONFLICT ({conflict}) DO NOTHING" if conflict else ""
    head = f"INSERT INTO {table} ({', '.join(columns)}) "
    added = 0
    if connection.dialect.name == "postgresql":
        mark = _array_mark(connection)
        arrays = ", ".join(f"{mark}::{PG_ARRAY_TYPES.get(c, 'text')}[]" for c in columns)
        statement = head + f"SELECT * FROM unnest({arrays})" + tail
        for part in _chunks(list(rows), CHUNK):
            result = connection.exec_driver_sql(
                statement, tuple(list(column) for column in zip(*part, strict=True))
            )
            added += result.rowcount
        return added
    one = "(" + ", ".join([_mark(connection)] * len(columns)) + ")"
    for part in _chunks(list(rows), INSERT_ROWS):
        result = connection.exec_driver_sql(
            head + "VALUES " + ", ".join([one] * len(part)) + tail, tuple(v for row in part for v in row)
        )
        added += result.rowcount
    return added


def _bind(connection: sa.Connection, column: sa.Column, value: Any) -> Any:
    """*value* as the driver takes it for *column* (SQLAlchemy's conversion, e.g. datetimes on SQLite)."""
    process = column.type.dialect_impl(connection.dialect).bind_processor(connection.dialect)
    return process(value) if process else value


def _result(connection: sa.Connection, column: sa.Column) -> Any:
    """A function from the driver's value for *column* to the Python value."""
    process = column.type.dialect_impl(connection.dialect).result_processor(connection.dialect, None)
    return process or (lambda value: value)


NOTHING_HEARD = State("active", "no counted outcome")
"""The state of a number with no outcome (most of a new lead file)."""

IMPORT_CHUNK = 20000
"""Lead rows checked and entered together (bounds an import's memory)."""


class _Outputs:
    """An import's accepted and rejected CSVs, written to temporary files and put in place
    only when the import commits."""

    def __init__(
        self, accepted: Path, accepted_columns: list[str], rejected: Path, rejected_columns: list[str]
    ) -> None:
        self._targets = (accepted, rejected)
        self._temporary = tuple(p.with_name(f".{p.name}.{os.getpid()}") for p in self._targets)
        self._handles = [open(t, "w", newline="", encoding="utf-8") for t in self._temporary]
        self._accepted = csv.DictWriter(self._handles[0], accepted_columns, extrasaction="ignore")
        self._rejected = csv.DictWriter(self._handles[1], rejected_columns, extrasaction="ignore")
        self._accepted.writeheader()
        self._rejected.writeheader()
        self._done = False

    def accept(self, row: dict[str, Any], result: ImportResult) -> None:
        self._accepted.writerow(row)
        result.accepted += 1

    def reject(self, row: dict[str, Any], line: int, reason: str, result: ImportResult) -> None:
        self._rejected.writerow({**row, "line": line, "reason": reason})
        kind = reason.split(":")[0].split(" of ")[0]
        result.rejected[kind] = result.rejected.get(kind, 0) + 1

    def __enter__(self) -> _Outputs:
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        for handle in self._handles:
            handle.close()
        if kind is None:
            for temporary, target in zip(self._temporary, self._targets, strict=True):
                os.replace(temporary, target)
            self._done = True

    def discard(self) -> None:
        for handle in self._handles:
            handle.close()
        if not self._done:
            for temporary in self._temporary:
                Path(temporary).unlink(missing_ok=True)


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


FIELD_LIMIT = 128 * 1024
"""Longest CSV field read (Python's csv default): a row with a longer one is rejected on its
own, with its line, and the import goes on."""


def _rows(reader: csv.DictReader, path: Path) -> Iterator[tuple[int, dict[str, str] | None]]:
    """(line, row) of each data row; ``None`` for a row with a field over ``FIELD_LIMIT``.
    Anything else unreadable (bytes not in the file's encoding, broken quoting) refuses the
    whole file (``UsageError``): the rows after it cannot be trusted."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if "field larger than field limit" in str(exc):
                yield reader.line_num + 1, None  # the reader counts a line once it is parsed
                continue
            raise UsageError(_unreadable(path, reader, exc)) from None
        except UnicodeDecodeError as exc:
            raise UsageError(_unreadable(path, reader, exc)) from None
        yield reader.line_num, {k: (v or "") for k, v in row.items() if k}


def _unreadable(path: Path, reader: Any, exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        line = first_undecodable_line(path, exc.encoding)
        return not_encoded("lead file", path, exc.encoding, f"line {line}" if line else "a line")
    return f"lead file {path}, line {reader.line_num}: {exc}"


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
