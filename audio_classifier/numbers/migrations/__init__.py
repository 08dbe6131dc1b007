"""Alembic migrations of the registry's schema (``schema.py``), run by ``Registry`` on open."""
