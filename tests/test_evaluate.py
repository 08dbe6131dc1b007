"""Replaying decisions at other thresholds from one run to the end of each clip."""

import itertools
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio_classifier import Classifier, ClassifierConfig, synth
from audio_classifier.batch import BatchItem, ReadOptions, UsageError, classify_item, confidence_peaks
from audio_classifier.calibration import ConfidenceMap
from audio_classifier.evaluate import MAX_SLICES, check_slices, decide_at, score_records

TONES_ONLY = ClassifierConfig(model_path=None, samples_path=None, asr_model=None)
ACT = 0.91


@pytest.fixture()
def call(tmp_path):
    """CN ringback, then busy tone: a progress label first, then an outcome."""
    audio = np.concatenate(
        [synth.cadenced(synth.spec("CN", "ringback"), 6.0), synth.cadenced(synth.spec("CN", "busy"), 4.0)]
    )
    path = tmp_path / "call.wav"
    sf.write(path, audio, 8000)
    return path


def test_peaks_are_rising_outcomes_and_the_first_over_the_threshold_is_the_early_decision(call, tmp_path):
    mapping = ConfidenceMap(0.8, -0.5)
    mapping.save(tmp_path / "map.json")
    mapped = TONES_ONLY.with_options(confidence_map=str(tmp_path / "map.json"))
    peaks, on_update = confidence_peaks()
    full = Classifier(mapped.with_options(early_decision=False, update_min_delta=0.0))
    end = full.classify_file(call, on_update=on_update)
    # [analysed_s, label, score, confidence]: the threshold applies to the score
    assert all(p[3] == pytest.approx(mapping(p[2])) and p[3] != p[2] for p in peaks)
    assert len(peaks) >= 2 and end.label == "busy_tone"
    assert all(label not in {"ringback", "silence", "color_ringback"} for _, label, *_ in peaks)
    assert all(a[2] < b[2] and a[0] < b[0] for a, b in itertools.pairwise(peaks))
    early = Classifier(mapped).classify_file(call)
    first = next(p for p in peaks if p[2] >= TONES_ONLY.decision.decision_threshold)
    assert (early.decided_at_s, early.label, early.score, early.confidence) == (
        pytest.approx(first[0]),
        first[1],
        first[2],
        first[3],
    )
    assert early.decided_at_s > 6.0  # nothing was decided during the ringback


def test_decide_at_replays_a_record(call):
    classifier = Classifier(TONES_ONLY.with_options(early_decision=False, update_min_delta=0.0))
    record = classify_item(classifier, BatchItem(str(call), call), ReadOptions(peaks=True))
    early = classify_item(Classifier(TONES_ONLY), BatchItem(str(call), call), ReadOptions())
    replayed = decide_at(record, 0.9, act_threshold=ACT)
    assert "peaks" not in replayed
    for key in (
        "label",
        "label_zh",
        "confidence",
        "number_state",
        "action",
        "decided_at_s",
        "analysed_s",
        "truncated",
    ):
        assert replayed[key] == early[key], key
    at_end = decide_at(record, None, act_threshold=ACT)  # no early decision: the end of the stream
    assert at_end["decided_at_s"] == pytest.approx(10.0, abs=0.3)
    assert at_end["decided_at_s"] > replayed["decided_at_s"]
    assert (
        decide_at(record, 1.0, act_threshold=ACT)["decided_at_s"] == at_end["decided_at_s"]
    )  # never reached
    broken = {"path": "x.wav", "error": "DecodeError: not audio"}
    assert decide_at(broken, 0.9, act_threshold=ACT) is broken
    # a destructive label replayed below the act threshold (which applies to the confidence,
    # the threshold to the score): review, with its own note
    record = dict(record, peaks=[[2.0, "vacant", 0.93, 0.85], [3.0, "vacant", 0.99, 0.95]], notes=["kept"])
    held = decide_at(record, 0.9, act_threshold=ACT)
    assert held["action"] == "review" and held["withheld_action"] == "remove"
    assert held["notes"][0] == "kept" and "withheld" in held["notes"][1]
    acted = decide_at(record, 0.95, act_threshold=ACT)
    assert acted["action"] == "remove" and acted["withheld_action"] is None and acted["notes"] == ["kept"]
    old = dict(record, peaks=[[2.0, "vacant", 0.93]])  # written before scores: refused
    with pytest.raises(UsageError, match="without scores"):
        decide_at(old, 0.9, act_threshold=ACT)
    with pytest.raises(UsageError, match="no confidence peaks"):
        decide_at(early, 0.9, act_threshold=ACT)


def test_labels_that_share_an_action_are_right_for_the_list():
    truth = ["vacant", "vacant", "busy", "human"]
    predicted = ["number_changed", "vacant", "powered_off", "human"]  # remove, remove, retry_later, keep
    items = [BatchItem(f"{i}.wav", None, {"manifest_label": t}) for i, t in enumerate(truth)]
    records = [
        {"path": item.key, **item.extra, "label": p, "confidence": 0.95, "decided_at_s": 3.0, "error": None}
        for item, p in zip(items, predicted, strict=True)
    ]
    metrics = score_records(items, records)
    assert metrics["accuracy"] == 0.5 and metrics["actions"]["accuracy"] == 0.75
    per_action = {r["label"]: r for r in metrics["actions"]["per_action"]}
    assert per_action["remove"]["precision"] == per_action["remove"]["recall"] == 1.0
    assert per_action["retry_soon"]["recall"] == 0.0 and per_action["retry_later"]["precision"] == 0.0


def test_an_early_decision_replayed_from_a_truncated_stream_is_not_truncated(call):
    limited = TONES_ONLY.with_options(max_duration_s=9.0)  # the 10 s call is cut; busy tone from 6 s
    full = classify_item(
        Classifier(limited.with_options(early_decision=False, update_min_delta=0.0)),
        BatchItem(str(call), call),
        ReadOptions(peaks=True),
    )
    early = classify_item(Classifier(limited), BatchItem(str(call), call), ReadOptions())
    assert full["truncated"] and not early["truncated"]
    replayed = decide_at(full, limited.decision.decision_threshold, act_threshold=ACT)
    assert (replayed["label"], replayed["decided_at_s"], replayed["truncated"]) == (
        early["label"],
        early["decided_at_s"],
        False,
    )


def test_a_column_with_too_many_values_makes_no_slices():
    items = [
        BatchItem(f"{i}.wav", Path(f"{i}.wav"), {"label": "busy_tone", "seed": str(i)}) for i in range(200)
    ]
    assert check_slices(items, ["label"]) == ["label"]
    assert check_slices(items[:MAX_SLICES], ["seed"]) == ["seed"]
    carried = [BatchItem("a.wav", Path("a.wav"), {"manifest_label": "busy_tone"})]
    assert check_slices(carried, ["label"]) == ["manifest_label"]  # as classify carries it
    with pytest.raises(UsageError, match="at most"):
        check_slices(items[: MAX_SLICES + 1], ["seed"])
