"""Where the shipped assets are: the model, its card and confidence map, the sample library.

They live in the repository's ``models/`` folder (where the training recipe writes them) and
install as the package ``audio_classifier.assets`` (``pyproject.toml``), so a wheel carries
them; a source checkout that was never installed finds them in ``models/``.
"""

from __future__ import annotations

import importlib.resources
import os
from pathlib import Path

ASSETS_PACKAGE = "audio_classifier.assets"


def asset(name: str) -> Path:
    """The path of the shipped asset *name* (it may not exist: a build without it)."""
    try:
        root = importlib.resources.files(ASSETS_PACKAGE)
    except ModuleNotFoundError:  # a source checkout used without installing it
        return Path(__file__).resolve().parent.parent / "models" / name
    return Path(str(root.joinpath(name)))


def user_folder(env: str, xdg: str, *fallback: str) -> Path:
    """The user's folder of one kind: ``$env``, else ``$xdg/audio_classifier``, else
    ``~/<fallback...>/audio_classifier`` (the XDG base-directory convention)."""
    if os.environ.get(env):
        return Path(os.environ[env])
    base = os.environ.get(xdg) or os.path.join(Path.home(), *fallback)
    return Path(base) / "audio_classifier"
