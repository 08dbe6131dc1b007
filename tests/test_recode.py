"""training.recode: a manifest's clips through an AMR-NB round trip, for a robustness check."""

import csv
import shutil

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import FIXTURES
from tests.helpers import best_by_label, tone_evidence
from training import recode


def _manifest(folder, rows):
    with open(folder / "heldout.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["path", "label", "onset_s"])
        writer.writeheader()
        writer.writerows(rows)
    return folder / "heldout.csv"


def _busy_and_broken(folder, extra_rows=()):
    """A manifest in *folder* of *extra_rows*, the CN busy fixture and a broken file."""
    (folder / "clips").mkdir(parents=True, exist_ok=True)
    shutil.copy(FIXTURES / "tones" / "cn_busy.wav", folder / "clips" / "busy.wav")
    (folder / "clips" / "broken.wav").write_bytes(b"RIFF not really")
    rows = [
        *extra_rows,
        {"path": "clips/busy.wav", "label": "busy_tone", "onset_s": 0},
        {"path": "clips/broken.wav", "label": "vacant", "onset_s": 0},
    ]
    return _manifest(folder, rows)


def test_recoded_clips_keep_length_and_tones_and_a_broken_one_is_left_out(tmp_path):
    src = tmp_path / "src"
    manifest = _busy_and_broken(src)
    written, errors = recode.recode(manifest, tmp_path / "amr", mode=0, jobs=1, progress=False)
    assert written == 1 and len(errors) == 1 and "broken.wav" in errors[0]
    with open(tmp_path / "amr" / "heldout.csv", newline="", encoding="utf-8") as handle:
        assert [row["path"] for row in csv.DictReader(handle)] == ["clips/busy.wav"]
    before, _ = sf.read(src / "clips" / "busy.wav", dtype="float32")
    after, rate = sf.read(tmp_path / "amr" / "clips" / "busy.wav", dtype="float32")
    assert rate == 8000 and abs(len(after) - len(before)) <= 160  # at most one 20 ms frame
    assert not np.allclose(after[: len(before)], before[: len(after)], atol=1e-3)  # it was coded
    assert best_by_label(tone_evidence(after)).get("busy_tone", 0.0) >= 0.9  # at 4.75 kbit/s


def test_bad_arguments_are_refused(tmp_path):
    manifest = _manifest(tmp_path, [])
    with pytest.raises(ValueError, match="mode must be 0-7"):
        recode.recode(manifest, tmp_path / "out", mode=8, jobs=1)
    with pytest.raises(ValueError, match="must not be the manifest's own folder"):
        recode.recode(manifest, tmp_path, mode=7, jobs=1)
    outside = _manifest(tmp_path, [{"path": "../elsewhere.wav", "label": "vacant", "onset_s": 0}])
    with pytest.raises(ValueError, match="not inside the manifest's folder"):
        recode.recode(outside, tmp_path / "out", mode=7, jobs=1)


def test_a_bad_row_is_refused_before_anything_is_written(tmp_path):
    manifest = _manifest(
        tmp_path,
        [
            {"path": "a/first.wav", "label": "vacant", "onset_s": 0},
            {"path": "/abs/second.wav", "label": "vacant", "onset_s": 0},
        ],
    )
    with pytest.raises(ValueError, match="not inside the manifest's folder"):
        recode.recode(manifest, tmp_path / "out", mode=7, jobs=1)
    assert not (tmp_path / "out").exists()


def test_an_empty_manifest_gives_an_empty_one(tmp_path):
    manifest = _manifest(tmp_path, [])
    assert recode.recode(manifest, tmp_path / "out" / "amr", mode=7, jobs=1, progress=False) == (0, [])
    with open(tmp_path / "out" / "amr" / "heldout.csv", newline="", encoding="utf-8") as handle:
        assert list(csv.DictReader(handle)) == []


def test_lowpass_removes_the_band_edge_and_keeps_the_rest(tmp_path):
    src = tmp_path / "src"
    (src / "clips").mkdir(parents=True)
    noise = (0.1 * np.random.default_rng(0).standard_normal(8000 * 2)).astype(np.float32)
    sf.write(src / "clips" / "noise.wav", noise, 8000, subtype="PCM_16")
    manifest = _busy_and_broken(src, [{"path": "clips/noise.wav", "label": "silence", "onset_s": 0}])
    written, errors = recode.recode(manifest, tmp_path / "lp", mode=None, jobs=1, progress=False)
    assert written == 2 and len(errors) == 1 and "broken.wav" in errors[0]
    after, rate = sf.read(tmp_path / "lp" / "clips" / "noise.wav", dtype="float32")
    assert rate == 8000 and len(after) == len(noise)

    def band_db(x, lo_hz, hi_hz):
        spectrum = np.abs(np.fft.rfft(x[200:-200] * np.hanning(len(x) - 400))) ** 2  # no leakage
        hz = np.fft.rfftfreq(len(x) - 400, 1 / 8000)
        return 10 * np.log10(spectrum[(hz >= lo_hz) & (hz < hi_hz)].mean())

    assert band_db(after, 500, 3000) == pytest.approx(band_db(noise, 500, 3000), abs=0.5)  # passband kept
    assert band_db(after, 3850, 4000) < band_db(noise, 3850, 4000) - 15  # measured: about 20 dB
    busy, _ = sf.read(tmp_path / "lp" / "clips" / "busy.wav", dtype="float32")
    assert best_by_label(tone_evidence(busy)).get("busy_tone", 0.0) >= 0.9
