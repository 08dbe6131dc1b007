"""Decoding, resampling and layout conversion at the audio edge."""

import numpy as np
import pytest

from audio_classifier import g711
from audio_classifier.audio import StreamConverter, normalise_encoding
from audio_classifier.errors import InvalidSamplesError, UnsupportedEncodingError
from audio_classifier.resample import Resampler


def test_g711_known_codes():
    # ITU-T G.711 reference points: mu-law 0xFF/0x7F are +-0, 0x80 is the largest positive.
    mu = g711.decode(bytes([0xFF, 0x80, 0x00]), "mulaw") * 32768
    assert mu.tolist() == [0.0, 32124.0, -32124.0]
    a = g711.decode(bytes([0xD5, 0xAA, 0x2A]), "alaw") * 32768
    assert a.tolist() == [8.0, 32256.0, -32256.0]


@pytest.mark.parametrize("law", ["mulaw", "alaw"])
def test_g711_round_trip_is_stable_and_close(law):
    x = np.linspace(-0.99, 0.99, 5001).astype(np.float32)
    y = g711.round_trip(x, law)
    assert np.array_equal(g711.round_trip(y, law), y)
    # companding error is relative: under 7 % of the magnitude above the smallest steps
    big = np.abs(x) > 0.01
    assert np.max(np.abs(y[big] - x[big]) / np.abs(x[big])) < 0.07


@pytest.mark.parametrize("law", ["mulaw", "alaw"])
def test_g711_encode_picks_the_nearest_level(law, rng):
    """Every level's decision points, a hair either side of them, random values, and values
    beyond the range: the code whose level is nearest (ties: the lower level)."""
    table = g711.decode(np.arange(256, dtype=np.uint8), law).astype(np.float64)
    levels = np.unique(table)
    midpoints = ((levels[1:] + levels[:-1]) / 2).astype(np.float32)
    x = np.concatenate(
        [
            midpoints,
            np.nextafter(midpoints, np.float32(2)),
            np.nextafter(midpoints, np.float32(-2)),
            levels.astype(np.float32),
            rng.uniform(-1.1, 1.1, 20000).astype(np.float32),
            np.array([0.0, -0.0, 5.0, -5.0], dtype=np.float32),
        ]
    )
    x = x[(np.abs(x) > 1e-6) | (x == 0)]  # float64 distances can not split closer calls
    distance = np.abs(x.astype(np.float64)[:, None] - levels[None, :])
    nearest = levels[np.argmin(distance, axis=1)]  # argmin: the first, lower level on a tie
    assert np.array_equal(table[g711.encode(x, law)], nearest)
    tiny = np.array([-1e-30, -1e-45, 1e-45, 1e-30], dtype=np.float32)
    near_zero = [0.0] * 4 if law == "mulaw" else [-8 / 32768] * 2 + [8 / 32768] * 2  # A-law has no 0
    assert table[g711.encode(tiny, law)].tolist() == near_zero
    extremes = np.array([-np.inf, -3e38, 3e38, np.inf], dtype=np.float32)
    assert table[g711.encode(extremes, law)].tolist() == [levels[0]] * 2 + [levels[-1]] * 2


@pytest.mark.parametrize("rate", [11025, 16000, 22050, 44100, 48000])
def test_resampler_is_accurate_and_chunk_invariant(rate, rng):
    t = np.arange(rate) / rate
    x = (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    whole = Resampler(rate, 8000)
    y = np.concatenate([whole.process(x), whole.flush()])
    assert len(y) == 8000
    ref = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(8000) / 8000)
    assert np.max(np.abs(y - ref)[200:-200]) < 1e-3
    pieces = Resampler(rate, 8000)
    out, i = [], 0
    while i < len(x):
        n = int(rng.integers(1, 997))
        out.append(pieces.process(x[i : i + n]))
        i += n
    out.append(pieces.flush())
    assert np.array_equal(np.concatenate(out), y)


@pytest.mark.parametrize("rate", [16000, 22050])
def test_resampler_output_is_its_polyphase_definition(rate, rng):
    """Each output sample is its phase's filter over the latest inputs (zeros before the
    stream), computed here one sample at a time."""
    x = (rng.standard_normal(rate // 10) * 0.3).astype(np.float32)
    r = Resampler(rate, 8000)
    y = np.concatenate([r.process(x), r.flush()])
    bank, taps, delay = r._bank.astype(np.float64), r._taps, r._delay
    padded = np.concatenate([np.zeros(taps), x, np.zeros(taps)])
    for n in range(len(y)):
        last = (n * r.down + delay) // r.up
        phase = (n * r.down + delay) % r.up
        inputs = padded[last + taps - np.arange(taps)]  # x[last], x[last - 1], ...
        assert y[n] == pytest.approx(float(inputs @ bank[phase]), abs=1e-6)


@pytest.mark.parametrize("rate", [8000, 11025, 16000, 48000])
def test_resampler_says_how_many_outputs_an_input_would_give(rate, rng):
    """``ready_after`` is what lets a session leave a live stream's chunks unresampled until
    they complete a block: it must count exactly what ``process`` then returns."""
    r = Resampler(rate, 8000)
    x = rng.standard_normal(rate).astype(np.float32)
    i = 0
    while i < len(x):
        chunk = x[i : i + int(rng.integers(0, 700))]
        expected = r.ready_after(len(chunk))
        assert len(r.process(chunk)) == expected
        assert r.ready_after(0) == 0
        i += len(chunk)


def test_resamplers_of_a_ratio_share_one_read_only_filter_bank():
    a, b = Resampler(16000, 8000), Resampler(32000, 16000)
    assert a._bank is b._bank and not a._bank.flags.writeable
    assert Resampler(48000, 8000)._bank is not a._bank


def test_resampler_removes_aliases():
    rate = 48000
    t = np.arange(rate) / rate
    x = (0.5 * np.sin(2 * np.pi * 6000 * t)).astype(np.float32)  # above 4 kHz Nyquist
    r = Resampler(rate, 8000)
    y = np.concatenate([r.process(x), r.flush()])
    assert np.sqrt(np.mean(y[200:-200] ** 2)) < 0.005


def test_pcm_bytes_split_anywhere():
    x = (np.arange(-500, 500) * 30).astype("<i2")
    data = x.tobytes()
    conv = StreamConverter(8000, "pcm_s16le")
    out = np.concatenate([conv.push(data[:3]), conv.push(data[3:1001]), conv.push(data[1001:])])
    assert np.allclose(out * 32768, x)


def test_stereo_channel_selection_and_mix():
    left = np.full(100, 0.5, dtype=np.float32)
    right = np.full(100, -0.25, dtype=np.float32)
    frames = np.stack([left, right], axis=1)
    assert np.allclose(StreamConverter(8000, "float32", 2, 1).push(frames), -0.25)
    assert np.allclose(StreamConverter(8000, "float32", 2, None).push(frames), 0.125)
    pcm = (frames * 32767).astype("<i2").tobytes()
    assert np.allclose(StreamConverter(8000, "pcm_s16le", 2, 0).push(pcm), 0.5, atol=1e-4)


def test_mulaw_and_alaw_streams():
    x = (0.3 * np.sin(np.arange(800) / 5)).astype(np.float32)
    for law in ("mulaw", "alaw"):
        out = StreamConverter(8000, law).push(g711.encode(x, law).tobytes())
        assert np.max(np.abs(out - x)) < 0.02


def test_encoding_names_and_errors():
    assert normalise_encoding("PCMU") == "mulaw"
    assert normalise_encoding("L16") == "pcm_s16le"
    with pytest.raises(UnsupportedEncodingError, match="supported: pcm_s16le, mulaw, alaw, float32"):
        normalise_encoding("opus")
    with pytest.raises(UnsupportedEncodingError, match="sample rate"):
        StreamConverter(100, "pcm_s16le")
    with pytest.raises(UnsupportedEncodingError, match="channel 2 does not exist"):
        StreamConverter(8000, "pcm_s16le", channels=2, channel=2)
    with pytest.raises(UnsupportedEncodingError, match="bytes or numpy"):
        StreamConverter(8000, "pcm_s16le").push("text")  # type: ignore[arg-type]


def test_non_finite_samples_rejected():
    conv = StreamConverter(8000, "float32")
    with pytest.raises(InvalidSamplesError, match="NaN or infinite"):
        conv.push(np.array([0.0, np.nan, 0.1], dtype=np.float32))
    with pytest.raises(InvalidSamplesError):
        StreamConverter(8000, "float32").push(np.array([np.inf], dtype=np.float32).tobytes())


def test_float_samples_far_beyond_full_scale_rejected():
    with pytest.raises(InvalidSamplesError, match=r"reach 1e\+30.*wrong scale"):
        StreamConverter(8000, "float32").push(np.full(800, 1e30, dtype=np.float32))
    with pytest.raises(InvalidSamplesError, match=r"reach 3\.2e\+04"):  # int16 values stored as floats
        StreamConverter(8000, "float32").push(np.array([0.0, 32000.0], dtype=np.float32).tobytes())
    loud = StreamConverter(8000, "float32").push(np.full(800, 1.5, dtype=np.float32))  # clipped, but audio
    assert len(loud) == 800
