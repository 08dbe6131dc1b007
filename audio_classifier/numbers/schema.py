"""The registry's tables (SQLAlchemy Core): one schema for SQLite and PostgreSQL, created
and changed only by the Alembic migrations in ``migrations/``."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

numbers = sa.Table(
    "numbers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("e164", sa.String(20), nullable=False, unique=True),
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
)
"""Every number the registry has seen, once."""

imports = sa.Table(
    "imports",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("list_name", sa.String(200), nullable=False),
    sa.Column("source", sa.String(200), nullable=False),
    sa.Column("file_name", sa.Text, nullable=False),
    sa.Column("file_sha256", sa.String(64), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("accepted", sa.Integer, nullable=False),
    sa.Column("rejected", sa.Integer, nullable=False),
    sa.UniqueConstraint("file_sha256", "list_name", "source", name="uq_imports_file_list_source"),
)
"""One row per lead file imported into a list from a source (a file imported again is the same import)."""

list_entries = sa.Table(
    "list_entries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("list_name", sa.String(200), nullable=False),
    sa.Column("number_id", sa.Integer, sa.ForeignKey("numbers.id", ondelete="CASCADE"), nullable=False),
    sa.Column("source", sa.String(200), nullable=False),
    sa.Column("import_id", sa.Integer, sa.ForeignKey("imports.id"), nullable=False),
    sa.Column("extra", sa.Text, nullable=False),
    sa.Column("added", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("list_name", "number_id", name="uq_list_entries_list_number"),
)
"""A number on a calling list, with the vendor that supplied it and the lead file's other columns (JSON)."""

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("number_id", sa.Integer, sa.ForeignKey("numbers.id", ondelete="CASCADE"), nullable=False),
    sa.Column("label", sa.String(40), nullable=False),
    sa.Column("confidence", sa.Float, nullable=True),
    sa.Column("action", sa.String(40), nullable=True),
    sa.Column("origin", sa.String(20), nullable=False),
    sa.Column("recording", sa.Text, nullable=True),
    sa.Column("call_id", sa.String(200), nullable=True),
    sa.Column("agent", sa.String(200), nullable=True),
    sa.Column("note", sa.Text, nullable=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("key", sa.String(64), nullable=False, unique=True),
    sa.Index("ix_events_number", "number_id"),
)
"""Outcomes, append-only: what a call, an agent or signalling said about a number. ``key``
makes recording the same outcome twice a no-op."""

blocklist = sa.Table(
    "blocklist",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("e164_sha256", sa.String(64), nullable=False, unique=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)
"""Numbers blocked by hand or kept blocked after ``forget`` erased them: by the SHA-256 of
their E.164 form only, so an erased number is not stored, yet an import of it is refused."""
