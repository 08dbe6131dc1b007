"""Features: the hand-written filterbank equals librosa's; streaming equals whole-clip."""

import numpy as np
import pytest

from audio_classifier import synth
from audio_classifier.features import FeatureConfig, WindowFeatures, clip_windows, mel_filterbank


def test_mel_filterbank_equals_librosa():
    import librosa

    for sr, n_fft, n_mels, fmin, fmax in [(8000, 256, 40, 100.0, 3800.0), (16000, 512, 64, 0.0, 8000.0)]:
        ours = mel_filterbank(sr, n_fft, n_mels, fmin, fmax)
        theirs = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("chunk", [80, 160, 333, 1601])
def test_streaming_features_are_identical_to_whole_clip(chunk, rng):
    config = FeatureConfig()
    x = np.concatenate([synth.speech_like(3.0, rng), synth.cadenced(synth.spec("CN", "busy"), 2.0)])
    whole = clip_windows(x, config)
    stream = WindowFeatures(config)
    pieces = []
    for i in range(0, len(x), chunk):
        pieces += stream.push(x[i : i + chunk])
    assert [t for t, _ in pieces] == [t for t, _ in whole]
    for (_, a), (_, b) in zip(pieces, whole, strict=True):
        assert np.array_equal(a, b)
    assert whole[0][1].shape == (config.dimension,)
    assert whole[0][0] == pytest.approx(config.window_s, abs=0.02)
    steps = np.diff([t for t, _ in whole])
    assert np.allclose(steps, config.step_s)


def test_features_ignore_gain(rng):
    config = FeatureConfig()
    x = synth.add_noise(synth.speech_like(2.5, rng), 30.0, rng)
    a = clip_windows(x, config)[0][1]
    for gain in (0.25, 3.0):  # -12 dB, +9.5 dB
        b = clip_windows(x * gain, config)[0][1]
        assert np.allclose(a, b, atol=1e-3)
