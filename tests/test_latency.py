"""training.latency: when the words of a prompt settle its label, and how long decisions wait."""

import json

import pytest

from training import latency

PROMPTS = {
    "announcements": {
        "vacant": {"zh": ["您拨打的号码是空号"], "en": ["The number you dialed does not exist"]},
        "powered_off": {"zh": ["您拨打的用户已关机"], "en": ["The number you dialed is powered off"]},
        "busy": {"zh": ["您拨打的用户正忙"], "en": ["The number you dialed"]},
    }
}


def test_mandarin_is_settled_at_the_first_syllable_no_other_label_shares():
    wordings = latency.wordings_by_label(PROMPTS)
    # nin2 bo1 da3 de5 | hao4 ...: the fifth of nine syllables tells vacant apart
    assert latency.uniqueness_share("您拨打的号码是空号", "vacant", wordings) == pytest.approx(5 / 9)
    # "您拨打的用户" is shared with busy: powered_off is settled at yi3, the seventh syllable
    assert latency.uniqueness_share("您拨打的用户已关机", "powered_off", wordings) == pytest.approx(7 / 9)


def test_english_words_count_by_their_length():
    wordings = latency.wordings_by_label(PROMPTS)
    # the number you dialed | does: (4 + 7 + 4 + 7 + 5) of 37 letters-and-gaps
    share = latency.uniqueness_share("The number you dialed does not exist", "vacant", wordings)
    assert share == pytest.approx(27 / 37)


def test_a_sentence_that_begins_another_labels_wording_is_settled_only_at_its_end():
    wordings = latency.wordings_by_label(PROMPTS)
    assert latency.uniqueness_share("The number you dialed", "busy", wordings) == 1.0


def test_report_gives_the_wait_after_the_words(tmp_path):
    manifest = tmp_path / "heldout.csv"
    manifest.write_text(
        "path,label,onset_s,speech,texts\n"
        "a.wav,vacant,1.0,1.00-3.00;3.50-5.00,您拨打的号码是空号|The number you dialed does not exist\n"
        "b.wav,ringback,0.0,,\n",
        encoding="utf-8",
    )
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_text(
        json.dumps({"path": "a.wav", "decided_at_s": 3.0})
        + "\n"
        + json.dumps({"path": "b.wav", "decided_at_s": 4.0}),
        encoding="utf-8",
    )
    (timing,) = latency.clip_timings(manifest, PROMPTS, latency.read_predictions(predictions))
    assert timing.settled_s == pytest.approx(2.0 * 5 / 9)  # into the first speech span, after onset
    assert timing.decided_s == pytest.approx(2.0)
    text = latency.report([timing], target_s=2.5)
    assert "vacant" in text and "0.89" in text  # waited 2.0 - 1.11 s after the words
    assert "by 2.5 s in 100.0% of the clips" in text


def test_report_splits_by_lead_in(tmp_path):
    manifest = tmp_path / "heldout.csv"
    manifest.write_text(
        "path,label,onset_s,speech,texts,lead\n"
        "a.wav,vacant,0.0,0.00-2.00,您拨打的号码是空号,\n"
        "b.wav,vacant,3.0,3.00-5.00,您拨打的号码是空号,ringback\n",
        encoding="utf-8",
    )
    decided = {"a.wav": 3.0, "b.wav": 5.5}
    timings = latency.clip_timings(manifest, PROMPTS, decided)
    assert [t.lead for t in timings] == ["none", "ringback"]
    lines = latency.report(timings, target_s=2.5).splitlines()
    (none,) = [line for line in lines if line.startswith("lead-in: none")]
    (ringback,) = [line for line in lines if line.startswith("lead-in: ringback")]
    assert none.split()[-2:] == ["3.00", "1.89"]  # decided 3.0 s after onset, 1.89 s after the words
    assert ringback.split()[-2:] == ["2.50", "1.39"]


def test_command_line_reads_the_recipes_prompts_or_given_ones(tmp_path, capsys):
    manifest = tmp_path / "heldout.csv"
    manifest.write_text(
        "path,label,onset_s,speech,texts\n"
        "a.wav,vacant,0.5,0.50-4.50,您拨打的号码是空号，请查证后再拨|Sorry\n",
        encoding="utf-8",
    )
    latency.main([str(manifest)])
    out = capsys.readouterr().out
    assert "all announcements" in out and "decided" not in out  # no predictions: no decisions
    prompts = tmp_path / "prompts.json"
    prompts.write_text(json.dumps(PROMPTS, ensure_ascii=False), encoding="utf-8")
    latency.main([str(manifest), "--prompts", str(prompts)])
    # against these prompts the fifth of 15 syllables settles it: 4 s * 5 / 15 after onset
    assert "1.33" in capsys.readouterr().out


def test_command_line_refuses_a_manifest_without_announcements(tmp_path):
    manifest = tmp_path / "tones.csv"
    manifest.write_text("path,label,onset_s,speech,texts\nb.wav,ringback,0.0,,\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="no announcement clip"):
        latency.main([str(manifest)])
