"""The confidence map: decision scores to the probability that the label is right."""

import itertools
import json
import shutil

import numpy as np
import pytest

from audio_classifier import Classifier, ClassifierConfig, synth
from audio_classifier.calibration import FORMAT, ConfidenceMap
from audio_classifier.channels.tone import ToneChannel
from audio_classifier.config import ACT_CONFIDENCE, ACT_SCORE
from audio_classifier.errors import ConfigError
from audio_classifier.model import DEFAULT_CONFIDENCE_MAP, DEFAULT_MODEL, MODEL_ENV
from training import calibrate_decisions

TONES_ONLY = ClassifierConfig(model_path=None, samples_path=None, asr_model=None)


def test_the_map_is_monotone_and_invertible():
    mapping = ConfidenceMap(0.85, -0.6)
    scores = np.linspace(0.01, 0.999, 200)
    confidences = [mapping(s) for s in scores]
    assert all(a < b for a, b in itertools.pairwise(confidences))
    assert mapping(0.96) < 0.96  # this map says high scores are over-confident
    for s in (0.2, 0.9, 0.96, 0.99):
        assert mapping.score_for(mapping(s)) == pytest.approx(s, abs=1e-9)
    assert ConfidenceMap(1.0, 0.0)(0.73) == pytest.approx(0.73)
    assert 0.0 < mapping(0.0) < mapping(1.0) < 1.0  # clipped, never certain


def test_fitting_recovers_a_known_map():
    rng = np.random.default_rng(7)
    truth = ConfidenceMap(0.8, -0.5)
    scores = rng.uniform(0.3, 0.999, 20000)
    right = rng.random(len(scores)) < np.array([truth(s) for s in scores])
    fitted = ConfidenceMap.fit(scores, right, fitted_on="synthetic")
    assert fitted.slope == pytest.approx(0.8, abs=0.08) and fitted.intercept == pytest.approx(-0.5, abs=0.15)
    assert fitted.decisions == 20000 and fitted.fitted_on == "synthetic"
    with pytest.raises(ValueError, match="both right and wrong"):
        ConfidenceMap.fit([0.9, 0.95], [True, True])


def test_map_files_round_trip_and_bad_ones_are_named(tmp_path):
    path = tmp_path / "map.json"
    ConfidenceMap(0.9, -0.2, "here", 10).save(path)
    assert ConfidenceMap.load(path) == ConfidenceMap(0.9, -0.2, "here", 10)
    cases = {
        "missing.json": (None, "cannot read"),
        "text.json": ("not json", "not JSON"),
        "other.json": (json.dumps({"format": "something else"}), "not a confidence map"),
        "noslope.json": (json.dumps({"format": FORMAT, "intercept": 0}), "needs numbers"),
        "negative.json": (json.dumps({"format": FORMAT, "slope": -1, "intercept": 0}), "positive slope"),
        "boolean.json": (json.dumps({"format": FORMAT, "slope": True, "intercept": 0}), "needs numbers"),
        "count.json": (
            json.dumps({"format": FORMAT, "slope": 1, "intercept": 0, "decisions": "many"}),
            "a count",
        ),
    }
    for name, (content, message) in cases.items():
        if content is not None:
            (tmp_path / name).write_text(content)
        with pytest.raises(ConfigError, match=message):
            ConfidenceMap.load(tmp_path / name)


def _vacant_sit() -> np.ndarray:
    return np.concatenate([synth.silence(0.5), synth.sit("vc"), synth.silence(4.0)])


def test_the_session_reports_the_mapped_confidence_and_acts_on_it(tmp_path):
    raw = Classifier(TONES_ONLY).classify_array(_vacant_sit(), 8000)
    assert raw.label == "vacant" and raw.confidence == raw.score == pytest.approx(0.93)
    assert raw.withheld_action == "remove"  # a bare score needs ACT_SCORE (0.97)
    doubtful, sure = tmp_path / "doubtful.json", tmp_path / "sure.json"
    ConfidenceMap(1.0, -2.0).save(doubtful)  # every score worth much less
    ConfidenceMap(1.0, 2.0).save(sure)  # ... or more
    low = Classifier(TONES_ONLY.with_options(confidence_map=str(doubtful))).classify_array(
        _vacant_sit(), 8000
    )
    assert low.label == "vacant" and low.score == raw.score  # the same decision, made as early
    assert low.decided_at_s == raw.decided_at_s
    assert low.confidence == pytest.approx(ConfidenceMap(1.0, -2.0)(raw.score))
    assert low.withheld_action == "remove" and low.action == "review"  # below ACT_CONFIDENCE
    high = Classifier(TONES_ONLY.with_options(confidence_map=str(sure))).classify_array(_vacant_sit(), 8000)
    # the act threshold is on the confidence: the map lifts the 0.93 score over it
    assert high.confidence >= ACT_CONFIDENCE and high.score < ACT_SCORE
    assert high.action == "remove" and high.withheld_action is None
    assert high.to_dict()["score"] == pytest.approx(raw.score, abs=1e-4)


def test_the_shipped_map_belongs_to_the_shipped_model(tmp_path, monkeypatch):
    assert DEFAULT_CONFIDENCE_MAP.is_file()
    shipped = Classifier(ClassifierConfig(samples_path=None, asr_model=None))
    assert shipped.confidence_map == ConfidenceMap.load(DEFAULT_CONFIDENCE_MAP)
    assert shipped.confidence_map.decisions >= 2000 and "draw 1" in shipped.confidence_map.fitted_on
    assert shipped.act_threshold == ACT_CONFIDENCE
    tones = Classifier(TONES_ONLY)
    assert tones.confidence_map is None and any("confidence map" in n for n in tones.notes)
    assert tones.act_threshold == ACT_SCORE
    own = Classifier(ClassifierConfig(samples_path=None, asr_model=None), channels=[ToneChannel()])
    assert own.confidence_map is None
    copy = tmp_path / "other.onnx"  # another model file (here a copy of the shipped one)
    shutil.copy(DEFAULT_MODEL, copy)
    shutil.copy(DEFAULT_MODEL.with_suffix(".json"), copy.with_suffix(".json"))
    monkeypatch.setenv(MODEL_ENV, str(copy))
    assert Classifier(ClassifierConfig(samples_path=None, asr_model=None)).confidence_map is None
    monkeypatch.delenv(MODEL_ENV)
    explicit = Classifier(TONES_ONLY.with_options(confidence_map=str(DEFAULT_CONFIDENCE_MAP)))
    assert explicit.confidence_map == shipped.confidence_map  # a path is used as given
    off = Classifier(ClassifierConfig(samples_path=None, asr_model=None, confidence_map=None))
    assert off.confidence_map is None


def test_the_fitting_script_reads_predictions_and_writes_a_map(tmp_path, capsys):
    rng = np.random.default_rng(3)
    lines = []
    for i in range(400):
        score = float(rng.uniform(0.5, 0.999))
        right = bool(rng.random() < 0.9 * score)
        lines.append(
            {
                "path": f"{i}.wav",
                "manifest_label": "vacant",
                "label": "vacant" if right else "busy",
                "score": score,
                "confidence": 0.5,
            }
        )
    lines.append({"path": "bad.wav", "error": "DecodeError: not audio"})
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "map.json"
    calibrate_decisions.main(
        [str(predictions), "--out", str(out), "--fitted-on", "test", "--check", str(predictions)]
    )
    mapping = ConfidenceMap.load(out)
    assert mapping.decisions == 400 and mapping.fitted_on == "test"
    assert "ECE" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_:
        calibrate_decisions.main([str(tmp_path / "nothing.jsonl"), "--out", str(out)])
    assert exit_.value.code == 1
    broken = tmp_path / "broken.jsonl"
    broken.write_text(
        json.dumps({"path": "a.wav", "manifest_label": "vacant", "label": "vacant", "score": 7.0}) + "\n"
    )
    with pytest.raises(SystemExit) as exit_:
        calibrate_decisions.main([str(broken), "--out", str(out)])
    assert exit_.value.code == 1 and "within 0..1" in capsys.readouterr().err
