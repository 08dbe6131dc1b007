"""Features: the hand-written filterbank equals librosa's; streaming equals whole-clip."""

import numpy as np
import pytest

from audio_classifier import synth
from audio_classifier.features import (
    CEPSTRAL_STD_FLOOR,
    DYNAMIC_RANGE_DB,
    MAX_PITCH_JUMP_ST,
    MIN_VOICED_FRAMES,
    PITCH_RANGE_ST,
    VOICED_STRENGTH,
    FeatureConfig,
    FrameStream,
    WindowFeatures,
    _mean,
    _percentiles,
    _share,
    clip_windows,
    dct_matrix,
    mel_filterbank,
    summarise_windows,
    window_ends,
)


def test_mel_filterbank_equals_librosa():
    import librosa

    for sr, n_fft, n_mels, fmin, fmax in [(8000, 256, 40, 100.0, 3800.0), (16000, 512, 64, 0.0, 8000.0)]:
        ours = mel_filterbank(sr, n_fft, n_mels, fmin, fmax)
        theirs = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-8)


WINDOWS_S = [2.0, 1.5]
"""The config's default window, and the recipe's (``training.train.WINDOW_S``), whose 150
frames split unevenly into the sub-blocks."""


@pytest.mark.parametrize("window_s", WINDOWS_S)
@pytest.mark.parametrize("pitch", [False, True])
@pytest.mark.parametrize("chunk", [80, 160, 333, 1601])
def test_streaming_features_are_identical_to_whole_clip(chunk, pitch, window_s, rng):
    config = FeatureConfig(pitch=pitch, window_s=window_s)
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


@pytest.mark.parametrize("window_s", WINDOWS_S)
@pytest.mark.parametrize("pitch", [False, True])
@pytest.mark.parametrize("seconds", [0.0, 0.4, 0.7, 1.515, 2.0, 2.015, 2.5, 7.3])
def test_chosen_windows_are_the_same_numbers_and_their_ends_known_in_advance(seconds, pitch, window_s, rng):
    """Training computes features only for the windows it keeps, from the clip's length:
    a clip shorter than the minimum, one padded short window, exactly one window, many."""
    config = FeatureConfig(pitch=pitch, window_s=window_s)
    x = synth.speech_like(seconds, rng) if seconds else np.zeros(0, dtype=np.float32)
    whole = clip_windows(x, config)
    assert window_ends(len(x), config) == [t for t, _ in whole]
    for keep in ([], list(range(len(whole))), list(range(len(whole)))[1::3], list(range(len(whole)))[-1:]):
        chosen = clip_windows(x, config, keep)
        assert [t for t, _ in chosen] == [whole[i][0] for i in keep]
        for i, (_, vector) in zip(keep, chosen, strict=True):
            assert np.array_equal(vector, whole[i][1])


def test_features_ignore_gain(rng):
    config = FeatureConfig()
    x = synth.add_noise(synth.speech_like(2.5, rng), 30.0, rng)
    a = clip_windows(x, config)[0][1]
    for gain in (0.25, 3.0):  # -12 dB, +9.5 dB
        b = clip_windows(x * gain, config)[0][1]
        assert np.allclose(a, b, atol=1e-3)


def _summarise_one(frames: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """The window summary written plainly, one window ``(frames, frame_rows)`` at a time: the
    definition the vectorised ``summarise_windows`` must keep (FEATURE_VERSION 3: the whole
    window, then its last ``recent_s`` seconds on their own; then, if ``pitch``, its pitch
    contour)."""
    logmel = frames[:, : config.n_mels]
    logmel = np.maximum(logmel, logmel.max() - DYNAMIC_RANGE_DB * np.log(10) / 10)
    centred = logmel - logmel.mean()
    mean = centred.mean(axis=0)
    blocks = np.array_split(centred, config.sub_blocks, axis=0)
    contour = [
        *_energy_contour_one(logmel.max(axis=1)),
        centred.std(),
        np.mean(np.abs(np.diff(np.argmax(logmel, axis=1))) > 2),
    ]
    whole = [
        mean,
        centred.std(axis=0),
        np.abs(np.diff(centred, axis=0)).mean(axis=0),
        centred.max(axis=0),
        np.concatenate([b.mean(axis=0) - mean for b in blocks]),
        contour,
        *_cepstral_pattern_one(centred, config),
    ]
    # the last recent_s seconds on their own
    recent = centred[-config.recent_frames :]
    recent = recent - recent.mean()
    contour = _energy_contour_one(logmel[-config.recent_frames :].max(axis=1))
    return np.concatenate(
        [
            *whole,
            recent.mean(axis=0),
            recent.std(axis=0),
            contour,
            *_cepstral_pattern_one(recent, config),
            *(
                [_pitch_pattern_one(frames[:, -2], frames[:, -1], config.cepstral_step_frames)]
                if config.pitch
                else []
            ),
        ]
    )


def _lower_median(values: np.ndarray) -> float:
    return np.sort(values)[(len(values) - 1) // 2]


def _pitch_pattern_one(strength: np.ndarray, semitones: np.ndarray, step: int) -> np.ndarray:
    steps = len(strength) // step
    out = np.zeros(3 * steps + 3)
    voiced = strength > VOICED_STRENGTH
    if voiced.sum() < MIN_VOICED_FRAMES:
        return out
    relative = np.where(
        voiced, np.clip(semitones - _lower_median(semitones[voiced]), -PITCH_RANGE_ST, PITCH_RANGE_ST), 0
    )
    slopes = np.zeros(len(strength))
    paired = np.zeros(len(strength), dtype=bool)
    for i in range(len(strength) - 1):
        jump = relative[i + 1] - relative[i]
        if voiced[i] and voiced[i + 1] and abs(jump) < MAX_PITCH_JUMP_ST:
            slopes[i], paired[i] = jump, True
    for k in range(steps):
        part = slice(k * step, (k + 1) * step)
        out[k] = voiced[part].mean()
        out[steps + k] = relative[part][voiced[part]].mean() if voiced[part].any() else 0
        out[2 * steps + k] = slopes[part][paired[part]].mean() if paired[part].any() else 0
    out[-3] = voiced.mean()
    out[-2] = np.sqrt(np.mean(np.square(relative[voiced])))
    out[-1] = np.abs(slopes[paired]).mean() if paired.any() else 0
    return out


def _energy_contour_one(energy: np.ndarray) -> list[float]:
    level = np.percentile(energy, [10, 50, 90])
    return [
        level[2] - level[0],
        level[1] - level[0],
        np.mean(energy < level[2] - 6.0),
        np.abs(np.diff(energy)).mean(),
    ]


def _cepstral_pattern_one(centred: np.ndarray, config: FeatureConfig) -> list[np.ndarray]:
    cepstra = centred @ dct_matrix(config.n_mels, config.n_cepstra)
    cepstra -= cepstra.mean(axis=0)
    spread = cepstra.std(axis=0)
    cepstra /= spread + CEPSTRAL_STD_FLOOR
    steps = len(cepstra) // config.cepstral_step_frames
    pattern = cepstra[: steps * config.cepstral_step_frames].reshape(steps, -1, config.n_cepstra).mean(axis=1)
    return [pattern.ravel(), spread / (spread + CEPSTRAL_STD_FLOOR)]


@pytest.mark.parametrize("window_s", WINDOWS_S)
@pytest.mark.parametrize("pitch", [False, True])
def test_vectorised_summary_keeps_the_definition(pitch, window_s, rng):
    config = FeatureConfig(pitch=pitch, window_s=window_s)
    x = np.concatenate(
        [
            synth.add_noise(synth.speech_like(4.0, rng), 20.0, rng),
            synth.cadenced(synth.spec("CN", "ringback"), 3.0),
        ]
    )
    frames = FrameStream(config).push(x)  # (frames, frame_rows)
    starts = range(0, len(frames) - config.window_frames + 1, 37)
    windows = np.stack([frames[s : s + config.window_frames].T for s in starts])  # time last
    ours = summarise_windows(windows, config)
    plain = np.stack([_summarise_one(frames[s : s + config.window_frames], config) for s in starts])
    assert ours.shape == plain.shape == (len(starts), config.dimension)
    np.testing.assert_allclose(ours, plain, rtol=1e-4, atol=1e-4)


def test_recent_seconds_extend_the_whole_window_summary(rng):
    """The recent part is appended: the whole-window values do not change with it, and
    without it the summary is the whole window's alone."""
    with_recent = FeatureConfig(pitch=False)
    without = FeatureConfig(recent_s=0.0, pitch=False)
    assert with_recent.recent_frames == 100
    assert without.dimension == 662
    assert with_recent.dimension == without.dimension + 2 * 40 + 4 + 16 * 11
    # speech, then a steady tone for the last 1.5 s
    x = np.concatenate([synth.speech_like(1.3, rng), synth.tone((450.0,), 1.5)])
    a = clip_windows(x, with_recent)
    b = clip_windows(x, without)
    assert [t for t, _ in a] == [t for t, _ in b]
    for (_, va), (_, vb) in zip(a, b, strict=True):
        assert np.array_equal(va[: without.dimension], vb)
    # the window's bands vary (speech then tone); its last second, all tone, hardly does
    vector = a[-1][1]  # ends at 2.765 s: its last second is all tone
    whole_spread = vector[40:80].mean()
    recent_spread = vector[without.dimension + 40 : without.dimension + 80].mean()
    assert recent_spread < 0.2 * whole_spread


@pytest.mark.parametrize("recent_s", [-0.5, 2.5])
def test_config_refuses_a_recent_part_outside_the_window(recent_s):
    with pytest.raises(ValueError, match="recent_s must be within"):
        FeatureConfig(recent_s=recent_s)


@pytest.mark.parametrize(
    ("shape", "axis"),
    [((3, 40, 200), 2), ((3, 40, 200), (1, 2)), ((2, 16, 20, 10), 3), ((4, 201), 1), ((1, 7), 1)],
)
def test_fast_reductions_equal_numpy_bit_for_bit(shape, axis, rng):
    """The summary's hand-rolled mean and share are numpy's, not approximations of it: the
    shipped model was trained on numbers computed with ``np.mean``."""
    values = (rng.standard_normal(shape) * 10 ** rng.uniform(-3, 3, shape)).astype(np.float32)
    for keepdims in (False, True):
        ours = _mean(values, axis, keepdims=keepdims)
        assert ours.dtype == np.float32
        assert np.array_equal(ours, values.mean(axis=axis, keepdims=keepdims))
    flags = values.reshape(len(values), -1) > 0.1
    assert np.array_equal(_share(flags), np.mean(flags, axis=1))


def test_percentiles_equal_numpy(rng):
    values = rng.standard_normal((5, 101)).astype(np.float32)
    for length in (101, 50, 2):
        np.testing.assert_allclose(
            _percentiles(values[:, :length], (10, 50, 90)),
            np.percentile(values[:, :length], (10, 50, 90), axis=1),
            rtol=1e-6,
            atol=1e-6,
        )
