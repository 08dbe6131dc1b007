"""The registry: numbers, imports, list entries, events, blocklist.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "numbers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("e164", sa.String(20), nullable=False, unique=True),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "imports",
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
    op.create_table(
        "list_entries",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("list_name", sa.String(200), nullable=False),
        sa.Column("number_id", sa.Integer, sa.ForeignKey("numbers.id", ondelete="CASCADE"), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("import_id", sa.Integer, sa.ForeignKey("imports.id"), nullable=False),
        sa.Column("extra", sa.Text, nullable=False),
        sa.Column("added", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("list_name", "number_id", name="uq_list_entries_list_number"),
    )
    op.create_table(
        "events",
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
    )
    op.create_index("ix_events_number", "events", ["number_id"])
    op.create_table(
        "blocklist",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("e164_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("blocklist")
    op.drop_index("ix_events_number", table_name="events")
    op.drop_table("events")
    op.drop_table("list_entries")
    op.drop_table("imports")
    op.drop_table("numbers")
