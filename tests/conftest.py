"""Shared test helpers. Every signal is generated here or read from fixtures/."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audio_classifier import Classifier, ClassifierConfig

from .helpers import Callbacks

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


@pytest.fixture(scope="session")
def classifier() -> Classifier:
    return Classifier()


@pytest.fixture(scope="session")
def full_classifier() -> Classifier:
    """Analyses every input to its end (no early decision)."""
    return Classifier(ClassifierConfig(early_decision=False))


@pytest.fixture()
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="module")
def callbacks():
    c = Callbacks()
    yield c
    c.httpd.shutdown()


@pytest.fixture(scope="session", autouse=True)
def own_data_folder(tmp_path_factory):
    """The user's own data (a sample library made by 'samples add') goes to a folder of the
    test run, for the test process and the commands it starts: never the real home."""
    import os

    folder = tmp_path_factory.mktemp("user-data")
    previous = os.environ.get("AUDIO_CLASSIFIER_DATA")
    os.environ["AUDIO_CLASSIFIER_DATA"] = str(folder)
    yield folder
    if previous is None:
        del os.environ["AUDIO_CLASSIFIER_DATA"]
    else:
        os.environ["AUDIO_CLASSIFIER_DATA"] = previous
