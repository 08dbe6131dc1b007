"""A non-editable install is a working product: the wheel carries the model, its card and
confidence map, the sample library and the lexicons, and classifies the fixtures right."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import FIXTURES

ROOT = Path(__file__).resolve().parent.parent


def test_a_wheel_installed_in_a_fresh_venv_classifies_the_fixtures(tmp_path):
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(wheels), str(ROOT)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("audio_classifier-*.whl")
    venv = tmp_path / "venv"
    # the dependencies come from this interpreter; the package itself only from the wheel
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", "--no-deps", str(wheel)], check=True, capture_output=True
    )
    where = subprocess.run(
        [python, "-c", "import audio_classifier.model as m; print(m.__file__); print(m.DEFAULT_MODEL)"],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert all(str(venv) in path for path in where), where  # not the source tree
    result = subprocess.run(
        [venv / "bin" / "audio-classifier", "classify", str(FIXTURES), "--no-asr"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    expected = {row["path"]: row["label"] for row in csv.DictReader(open(FIXTURES / "manifest.csv"))}
    records = [json.loads(line) for line in result.stdout.splitlines()]
    got = {str(Path(r["path"]).relative_to(FIXTURES)): r["label"] for r in records}
    assert got == expected
    assert all(r["confidence"] != r["score"] for r in records)  # the shipped confidence map is there
    assert "sample library" not in result.stderr and "model channel off" not in result.stderr
    # the registry's migrations and policy are package data too
    leads = tmp_path / "leads.csv"
    leads.write_text("number\n13800138000\n")
    registry = subprocess.run(
        [venv / "bin" / "audio-classifier", "numbers", "import", str(leads), "--source", "v", "--list", "l"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "AUDIO_CLASSIFIER_NUMBERS_DB": str(tmp_path / "r.sqlite")},
    )
    assert registry.returncode == 0 and "1 accepted" in registry.stdout, registry.stderr
