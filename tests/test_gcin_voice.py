"""The real-voice Mandarin recipe (training/gcin_voice.py) on Debian's gcin-voice."""

import csv
import json

import numpy as np
import soundfile as sf

from training import gcin_voice


def test_only_the_recipes_voice_is_read():
    path = gcin_voice.syllable_path("ㄏㄠˋ")
    assert path is not None and path.name == gcin_voice.VOICE_FILE == "5.ogg"
    assert path.parent.name == "ㄏㄠ4"
    # a syllable this voice never recorded (only the reserved one did): none, in any tone
    assert not any(
        (gcin_voice.GCIN_OGG / f"ㄒㄧㄥ{t}" / gcin_voice.VOICE_FILE).exists() for t in ("", "2", "3", "4")
    )
    assert gcin_voice.syllable_path("ㄒㄧㄥˊ") is None


def test_a_wording_is_joined_from_syllables_after_a_lead(tmp_path):
    texts = tmp_path / "texts.json"
    texts.write_text(
        json.dumps({"vacant": ["您拨打的号码是空号"], "rejected": ["对方行程繁忙"]}), encoding="utf-8"
    )
    gcin_voice.main([str(tmp_path / "out"), "--takes", "2", "--texts", str(texts)])
    with open(tmp_path / "out" / "manifest.csv", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["label"], r["take"]) for r in rows] == [
        ("vacant", "0"),
        ("vacant", "1"),
        ("rejected", "0"),
        ("rejected", "1"),
    ]
    assert rows[0]["missing"] == "" and rows[2]["missing"] == "ㄒㄧㄥˊ"  # 行 is left out, and said so
    for row in rows:
        x, rate = sf.read(tmp_path / "out" / row["path"], dtype="float32")
        assert rate == 8000 and abs(len(x) / rate - float(row["duration_s"])) < 1e-3
        lead = int(float(row["onset_s"]) * rate)
        assert not np.any(x[: lead - 80]) and np.abs(x[lead:]).max() > 0.25
    # nine syllables of about 0.3-0.6 s each, and two takes differ
    first, second = (sf.read(tmp_path / "out" / r["path"])[0] for r in rows[:2])
    assert 2.5 < len(first) / 8000 < 7.0 and len(first) != len(second)
