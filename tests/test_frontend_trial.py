"""The front-end trial (training/frontend_trial.py): a whole run on a few real-voice clips."""

import csv
import json

import pytest

from training import frontend_trial, gcin_voice


def test_a_trial_run_learns_two_labels_in_one_real_voice(tmp_path):
    texts = tmp_path / "texts.json"
    wordings = {
        "powered_off": ["您拨打的电话已关机", "对方手机已经关机"],
        "busy": ["对方正在通话中", "用户正忙，请稍后再拨"],
    }
    texts.write_text(json.dumps(wordings, ensure_ascii=False), encoding="utf-8")
    gcin_voice.main([str(tmp_path / "clips"), "--takes", "4", "--texts", str(texts)])
    with open(tmp_path / "clips" / "manifest.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))

    def write(name, keep):
        with open(tmp_path / "clips" / f"{name}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(r for r in rows if keep(r))

    write("train", lambda r: r["take"] != "3")
    write("check", lambda r: r["take"] == "3")
    out = tmp_path / "report.json"
    manifests = [
        "--train",
        str(tmp_path / "clips" / "train.csv"),
        "--check",
        str(tmp_path / "clips" / "check.csv"),
    ]
    frontend_trial.main([*manifests, "--out", str(out), "--jobs", "1", "--cache", str(tmp_path / "cache")])
    report = json.loads(out.read_text(encoding="utf-8"))
    assert report["check_labels"].keys() == {"powered_off", "busy"}
    assert report["cost_ms_per_audio_s"].keys() == {"logmel", "embedding"}  # measured by benchmarks/
    # the same voice and wordings, another take: the embedding's heads tell them apart
    assert report["embedding-sequence/mlp"]["clip_accuracy"] >= 0.75
    assert report["embedding-pooled/linear"]["clip_accuracy"] >= 0.75
    # the cache is used on a second run (the same numbers, CPU costs included) ...
    again = tmp_path / "again.json"
    frontend_trial.main([*manifests, "--out", str(again), "--jobs", "1", "--cache", str(tmp_path / "cache")])
    assert json.loads(again.read_text(encoding="utf-8")) == report
    # ... but not for a manifest rewritten at the same path with as many other clips
    write("check", lambda r: r["take"] == "2")
    frontend_trial.main([*manifests, "--out", str(again), "--jobs", "1", "--cache", str(tmp_path / "cache")])
    other = json.loads(again.read_text(encoding="utf-8"))
    assert other != report


@pytest.mark.parametrize("onset, duration, expected", [(0.5, 6.0, 7), (0.5, 2.0, 2), (2.0, 2.5, 0)])
def test_windows_end_from_one_second_after_the_onset(onset, duration, expected):
    ends = frontend_trial._ends(duration, onset)
    assert len(ends) == expected and all(onset + 1.0 - 1e-9 <= e <= duration for e in ends)
