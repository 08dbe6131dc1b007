"""Features: the hand-written filterbank equals librosa's; streaming equals whole-clip."""

import numpy as np
import pytest

from audio_classifier import synth
from audio_classifier.features import (
    CEPSTRAL_STD_FLOOR,
    DYNAMIC_RANGE_DB,
    FeatureConfig,
    LogMelStream,
    WindowFeatures,
    clip_windows,
    dct_matrix,
    mel_filterbank,
    summarise_windows,
)


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


def _summarise_one(logmel: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """The window summary written plainly, one window ``(frames, n_mels)`` at a time: the
    definition the vectorised ``summarise_windows`` must keep (and the shipped model's
    training code, commit 0e27673)."""
    logmel = np.maximum(logmel, logmel.max() - DYNAMIC_RANGE_DB * np.log(10) / 10)
    centred = logmel - logmel.mean()
    mean = centred.mean(axis=0)
    blocks = np.array_split(centred, config.sub_blocks, axis=0)
    energy = logmel.max(axis=1)
    level = np.percentile(energy, [10, 50, 90])
    contour = [
        level[2] - level[0],
        level[1] - level[0],
        np.mean(energy < level[2] - 6.0),
        np.abs(np.diff(energy)).mean(),
        centred.std(),
        np.mean(np.abs(np.diff(np.argmax(logmel, axis=1))) > 2),
    ]
    cepstra = centred @ dct_matrix(config.n_mels, config.n_cepstra)
    cepstra -= cepstra.mean(axis=0)
    cepstra /= cepstra.std(axis=0) + CEPSTRAL_STD_FLOOR
    steps = len(cepstra) // config.cepstral_step_frames
    pattern = cepstra[: steps * config.cepstral_step_frames].reshape(steps, -1, config.n_cepstra).mean(axis=1)
    return np.concatenate(
        [
            mean,
            centred.std(axis=0),
            np.abs(np.diff(centred, axis=0)).mean(axis=0),
            centred.max(axis=0),
            np.concatenate([b.mean(axis=0) - mean for b in blocks]),
            contour,
            pattern.ravel(),
            cepstra.std(axis=0),
        ]
    )


def test_vectorised_summary_keeps_the_definition(rng):
    config = FeatureConfig()
    x = np.concatenate(
        [
            synth.add_noise(synth.speech_like(4.0, rng), 20.0, rng),
            synth.cadenced(synth.spec("CN", "ringback"), 3.0),
        ]
    )
    frames = LogMelStream(config).push(x)  # (frames, n_mels)
    starts = range(0, len(frames) - config.window_frames + 1, 37)
    windows = np.stack([frames[s : s + config.window_frames].T for s in starts])  # time last
    ours = summarise_windows(windows, config)
    plain = np.stack([_summarise_one(frames[s : s + config.window_frames], config) for s in starts])
    assert ours.shape == plain.shape == (len(starts), config.dimension)
    np.testing.assert_allclose(ours, plain, rtol=1e-4, atol=1e-4)
