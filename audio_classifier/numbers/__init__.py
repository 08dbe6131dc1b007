"""The number registry: calling lists kept clean by what the calls said.

Numbers are normalised to E.164 (``phone.py``); imports of lead lists, outcomes (the
classifier's, agents', signalling's) and the blocklist live in one database, SQLite by
default or PostgreSQL (``schema.py``, migrated by Alembic: ``migrations/``); a number's
state follows from its outcomes by a policy that is data (``policy.py``, ``policy.toml``);
``registry.py`` is the API the ``numbers`` commands (``cli.py``) use.
"""

from typing import Any

__all__ = ["ImportResult", "InvalidNumber", "Policy", "Registry", "State", "normalise"]

_WHERE = {
    "ImportResult": "registry",
    "Registry": "registry",
    "InvalidNumber": "phone",
    "normalise": "phone",
    "Policy": "policy",
    "State": "policy",
}


def __getattr__(name: str) -> Any:
    """The API, imported when first used: the command line stays quick to start."""
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{_WHERE[name]}", __name__), name)
