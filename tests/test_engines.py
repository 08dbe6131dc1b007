"""The cross-engine check set: English announcements in voices training never hears."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from training import corpus, engines, tts


def test_stretch_slows_both_engines():
    for engine, voice in engines.VOICES:
        fast = engines.speak("please dial again later", engine, voice, 0.85)
        slow = engines.speak("please dial again later", engine, voice, 1.2)
        assert abs(len(slow) / len(fast) - 1.2 / 0.85) < 0.15, (engine, voice)
        assert abs(np.abs(slow).max() - engines.PEAK) < 1e-3


def test_set_has_every_announcement_in_unseen_voices(tmp_path):
    manifest = engines.build(tmp_path, per_label=1)
    with open(manifest, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["label"] for r in rows] == list(corpus.load_prompts()["announcements"])
    for row in rows:
        engine, voice = row["voice"].split("/")[0].split("+")
        assert (engine, voice) in engines.VOICES and voice not in tts.FLITE_TRAIN_VOICES
        audio, rate = sf.read(tmp_path / row["path"], dtype="float32")
        assert rate == 8000
        spans = [tuple(map(float, s.split("-"))) for s in row["speech"].split(";")]
        assert abs(spans[0][0] - float(row["onset_s"])) < 0.01 and spans[-1][1] <= len(audio) / rate + 0.01
        start, end = (int(t * rate) for t in spans[0])
        # the speech is where the manifest says: louder than the lead-in before it
        before = audio[max(0, start - 2000) : start]
        if len(before) > 400:
            assert np.sqrt(np.mean(audio[start:end] ** 2)) > 2 * np.sqrt(np.mean(before**2))


def test_mandarin_led_clips_take_their_mandarin_from_the_folder(tmp_path):
    announcements = corpus.load_prompts()["announcements"]
    folder = tmp_path / "voice"
    folder.mkdir()
    with open(folder / "index.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "text", "path"])
        for label, wordings in list(announcements.items())[:-1]:
            speech = tts.speak(wordings["zh"][0], tts.Voice("zh", tts.ZH_VOICE, "f2", 170, 50))
            sf.write(folder / f"{label}.wav", speech, 8000)
            writer.writerow([label, wordings["zh"][0], f"{label}.wav"])
    last = list(announcements)[-1]
    with pytest.raises(SystemExit, match=f"no recording of {last}"):
        engines.build(tmp_path / "set", per_label=1, zh_voice=folder)
    with open(folder / "index.csv", "a", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerow([last, announcements[last]["zh"][0], "vacant.wav"])
    with open(engines.build(tmp_path / "set", per_label=1, zh_voice=folder), newline="") as handle:
        rows = list(csv.DictReader(handle))
    for row in rows:
        assert row["text"] in announcements[row["label"]]["zh"]
        assert len(row["speech"].split(";")) == 3  # Mandarin, English, Mandarin
        assert row["voice"].split(";")[1].split("+")[0] in ("flite", "festival")


def test_check_wordings_replace_the_recipes_and_are_none_of_its(tmp_path):
    """``--texts training/check_wordings_en.json``: English wordings written for the check,
    none of them a recipe wording, for every announcement label."""
    path = Path(engines.__file__).with_name("check_wordings_en.json")
    texts = engines.read_texts(path)
    recipe = corpus.load_prompts()["announcements"]
    assert set(texts) == set(recipe)
    said = {t.lower() for v in recipe.values() for t in v["en"]}
    assert not {t.lower() for v in texts.values() for t in v["en"]} & said
    manifest = engines.build(tmp_path / "set", per_label=1, texts=path)
    with open(manifest, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["label"] for r in rows] == list(recipe)
    assert all(r["text"] in texts[r["label"]]["en"] for r in rows)
    (tmp_path / "short.json").write_text(json.dumps({"vacant": ["This number does not exist"]}))
    with pytest.raises(SystemExit, match="no wording for number_changed"):
        engines.read_texts(tmp_path / "short.json")
