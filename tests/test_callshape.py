"""The call-shaped check set (training/callshape.py), built tiny: every column and group, real
voices and never a reserved one, codecs applied, deterministic, enrolment files that import,
and a manifest the classifier evaluates end to end."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio_classifier.labels import ANNOUNCEMENT_LABELS
from audio_classifier.tone_plans import SIT_SUBTYPE_LABELS
from training import callshape, recode

RESERVED_PACKAGES = ("asterisk-core-sounds-en", "asterisk-core-sounds-es")


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _header(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as handle:
        return next(csv.reader(handle))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("callshape")
    callshape.main([str(out), "--tiny", "--enrolled", "--jobs", "2", "--no-progress"])
    return out


def test_every_column_group_and_call_shape_is_there(built):
    manifest = built / "manifest.csv"
    assert _header(manifest) == callshape.COLUMNS
    rows = _rows(manifest)
    assert {r["group"] for r in rows} == set(callshape.GROUPS)
    announcements = [r for r in rows if r["group"] == "announcement"]
    assert {r["label"] for r in announcements} == set(ANNOUNCEMENT_LABELS)
    alone = {r["sit"]: r["label"] for r in rows if r["group"] == "sit_alone"}
    assert alone == {
        subtype: SIT_SUBTYPE_LABELS[None if subtype == "plain" else subtype][0]
        for subtype in callshape.SIT_SUBTYPES
    }
    assert {r["label"] for r in rows if r["group"] == "reachable"} == {
        "ringback",
        "color_ringback",
        "human",
        "voicemail",
    }
    assert all(r["label"] == "unknown" for r in rows if r["group"] == "negative" and r["content"] != "music")
    for row in rows:
        info = sf.info(str(built / row["path"]))
        assert (info.samplerate, info.channels, info.subtype) == (8000, 1, "PCM_16")
        duration = info.frames / info.samplerate
        assert abs(float(row["duration_s"]) - duration) < 1e-3
        assert 0.0 <= float(row["onset_s"]) < duration, row["path"]
        assert row["reachable"] == str(
            int(row["label"] in ("ringback", "color_ringback", "human", "voicemail"))
        )
        assert row["lead"] in callshape.LEADS and row["codec"] in callshape.CODECS
        assert row["noise"] in callshape.NOISES and row["bandpass"] in ("yes", "no")
        assert (row["plan"] in callshape.PLANS) == (row["lead"] == "ringback" or row["content"] == "ringback")
        if row["lead"] != "none" and row["group"] != "negative":
            assert float(row["onset_s"]) >= float(row["lead_s"]) > 0
        if row["sit"] != "none" and row["group"] == "announcement":
            assert row["sit_pairing"] in ("real", "random")


def test_real_voices_are_used_and_never_a_reserved_one(built):
    rows = [r for name in ("manifest", "enrolled", "nonenrolled") for r in _rows(built / f"{name}.csv")]
    real = [r for r in rows if r["source"] == "real"]
    assert len({r["voice"] for r in real}) >= 3
    for row in real:
        assert row["voice"] in callshape.REAL_VOICES
        assert row["package"] == callshape.REAL_VOICES[row["voice"]].package
        assert row["recording"].split("/")[0] == row["voice"]
    for row in rows:  # nothing anywhere from the packages kept for independent evaluation
        assert not row["recording"].startswith(callshape.RESERVED_FOLDERS), row
        assert not any(package in value for value in row.values() for package in RESERVED_PACKAGES)
    for row in _rows(built / "enrol.csv"):
        assert not any(package in value for value in row.values() for package in RESERVED_PACKAGES)


def test_reserved_and_duplicate_voices_are_refused():
    for folder in ("en", "en_US_f_Allison", "es_MX_f_Allison", "it", "it_IT"):
        with pytest.raises(ValueError):
            callshape.recording_path(folder, "ss-noservice")


def test_the_codecs_are_applied(built):
    rows = _rows(built / "manifest.csv")
    g711 = [r for r in rows if r["codec"] in ("mulaw", "alaw")]
    assert g711 and any(r["codec"] == "linear" for r in rows)
    for row in g711:  # nothing after the codec: its 256 levels are the clip's only values
        samples, _ = sf.read(str(built / row["path"]), dtype="int16")
        assert len(np.unique(samples)) <= 256, row["path"]
    for row in rows:
        assert (row["amr_kbps"] != "") == (row["codec"] == "amr-nb")
        if row["amr_kbps"]:
            assert float(row["amr_kbps"]) in recode.AMR_MODES_KBPS


def test_the_same_arguments_make_the_same_files(built, tmp_path):
    """Plain and --enrolled runs share their manifest.csv clips, whatever the processes."""
    callshape.main([str(tmp_path), "--tiny", "--jobs", "1", "--no-progress"])
    assert (tmp_path / "manifest.csv").read_bytes() == (built / "manifest.csv").read_bytes()
    for row in _rows(built / "manifest.csv"):
        assert (tmp_path / row["path"]).read_bytes() == (built / row["path"]).read_bytes(), row["path"]
    assert not (tmp_path / "enrol.csv").exists()


def test_another_draw_makes_other_clips_of_the_same_plan(built, tmp_path):
    callshape.main([str(tmp_path), "--tiny", "--draw", "1", "--jobs", "2", "--no-progress"])
    first, second = _rows(built / "manifest.csv"), _rows(tmp_path / "manifest.csv")
    assert [(r["path"], r["label"], r["group"]) for r in first] == [
        (r["path"], r["label"], r["group"]) for r in second
    ]
    assert all(a["seed"] != b["seed"] for a, b in zip(first, second, strict=True))
    differ = sum(
        (tmp_path / b["path"]).read_bytes() != (built / a["path"]).read_bytes()
        for a, b in zip(first, second, strict=True)
    )
    assert differ == len(first)
    with pytest.raises(SystemExit):
        callshape.main([str(tmp_path / "x"), "--tiny", "--draw", "-1"])


def test_the_enrolment_files_import_and_split_enrolled_from_not(built, tmp_path):
    from audio_classifier.samples import SampleLibrary

    enrol = _rows(built / "enrol.csv")
    assert _header(built / "enrol.csv")[:4] == ["path", "label", "carrier", "note"]
    with SampleLibrary(tmp_path / "library.sqlite", create=True) as library:
        results = list(library.import_manifest(built / "enrol.csv"))
    assert [error for *_, error in results if error] == []
    assert len(results) == len(enrol)
    to_enrol, kept_out = callshape.enrol_plan()
    assert {p.voice for p in to_enrol if p.voice} == set(callshape.REAL_VOICES)
    assert {p.voice for p in kept_out} == set(callshape.REAL_VOICES)  # every voice keeps prompts out
    assert any(p.spoken for p in to_enrol)
    enrolled_keys = {(p.voice, p.prompt) if p.voice else ("", p.key) for p in to_enrol}

    def key(row: dict) -> tuple[str, str]:
        return (row["voice"], row["prompt"]) if row["source"] == "real" else ("", row["prompt"])

    enrolled, nonenrolled = _rows(built / "enrolled.csv"), _rows(built / "nonenrolled.csv")
    assert enrolled and nonenrolled
    assert all(r["enrolled"] == "1" and key(r) in enrolled_keys for r in enrolled)
    assert all(r["enrolled"] == "0" and key(r) not in enrolled_keys for r in nonenrolled)
    assert {r["source"] for r in nonenrolled} >= {"real", "synthetic"}


def test_the_classifier_evaluates_the_manifest(built, tmp_path):
    """End to end through the command line: it runs and writes a record per clip."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "audio_classifier.cli",
            "evaluate",
            str(built / "manifest.csv"),
            "--no-asr",
            "--out-dir",
            str(tmp_path / "evaluation"),
            "--jobs",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode in (0, 1), done.stderr
    with open(tmp_path / "evaluation" / "predictions.jsonl", encoding="utf-8") as handle:
        records = [json.loads(line) for line in handle]
    assert sorted(r["path"] for r in records) == sorted(r["path"] for r in _rows(built / "manifest.csv"))
    # the check's own figures, from that evaluation
    report = subprocess.run(
        [sys.executable, "-m", "training.callshape_report", str(tmp_path / "evaluation")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert report.returncode == 0, report.stderr
    reachable = [
        r for r in records if r["manifest_label"] in ("ringback", "color_ringback", "human", "voicemail")
    ]
    assert "reachable calls given remove or suppress: " in report.stdout
    assert f" of {len(reachable)} (" in report.stdout.split("reachable calls given remove or suppress: ")[1]
    assert "SIT alone: the SIT's label" in report.stdout and "ECE" in report.stdout
