"""Pitch tracking on the log-mel frame grid, and the window's pitch contour features."""

import numpy as np
import pytest

from audio_classifier.features import VOICED_STRENGTH, FeatureConfig, clip_windows
from audio_classifier.pitch import PitchStream

SR = 8000
CONFIG = FeatureConfig(pitch=True)
PITCH_VALUES = 3 * (CONFIG.window_frames // CONFIG.cepstral_step_frames) + 3
STEPS = CONFIG.window_frames // CONFIG.cepstral_step_frames


def voiced(f0_hz: np.ndarray, harmonics: int = 12) -> np.ndarray:
    """A voice-like harmonic signal whose pitch follows *f0_hz* (one value per sample)."""
    phase = 2 * np.pi * np.cumsum(f0_hz) / SR
    x = sum(np.sin(k * phase) / k for k in range(1, harmonics + 1) if k * f0_hz.max() < SR / 2)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


def glide(start_hz: float, semitones: float, seconds: float) -> np.ndarray:
    return start_hz * 2 ** (np.linspace(0, semitones, int(seconds * SR)) / 12)


def track(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return PitchStream(SR, CONFIG.frame_len, CONFIG.hop).push(x)


def pitch_part(x: np.ndarray) -> np.ndarray:
    """The pitch values of the first window of *x*."""
    return clip_windows(x, CONFIG)[0][1][-PITCH_VALUES:]


@pytest.mark.parametrize("f0", [72.0, 100.0, 151.0, 233.0, 390.0])
def test_a_steady_voice_gets_its_pitch(f0):
    strength, semitones = track(voiced(np.full(SR, f0)))
    assert len(strength) == CONFIG.frames_in(SR)
    inner = slice(5, None)  # the first frames reach back before the stream (zeros)
    assert np.all(strength[inner] > 0.9)
    np.testing.assert_allclose(semitones[inner], 12 * np.log2(f0 / 100), atol=0.15)


def test_a_gliding_voice_is_followed_without_octave_errors():
    f0 = glide(90.0, 19.0, 2.0)  # 90 -> 270 Hz
    strength, semitones = track(voiced(f0))
    centres = np.arange(len(strength)) * CONFIG.hop + CONFIG.frame_len - 160  # analysis frame centres
    truth = 12 * np.log2(f0[np.clip(centres, 0, len(f0) - 1)] / 100)
    inner = slice(5, None)
    assert np.all(strength[inner] > VOICED_STRENGTH)
    assert np.max(np.abs(semitones[inner] - truth[inner])) < 0.5


def test_noise_and_silence_are_unvoiced(rng):
    strength, semitones = track(rng.standard_normal(2 * SR).astype(np.float32) * 0.1)
    assert np.mean(strength > VOICED_STRENGTH) < 0.01
    strength, semitones = track(np.zeros(SR, dtype=np.float32))
    assert np.all(strength == 0) and np.all(np.isfinite(semitones))


@pytest.mark.parametrize("chunk", [1, 79, 80, 333, 4000])
def test_chunking_does_not_change_the_tracks(chunk, rng):
    x = voiced(glide(120.0, 7.0, 1.5)) + 0.02 * rng.standard_normal(int(1.5 * SR)).astype(np.float32)
    whole = track(x)
    stream = PitchStream(SR, CONFIG.frame_len, CONFIG.hop)
    parts = [stream.push(x[i : i + chunk]) for i in range(0, len(x), chunk)]
    for k in range(2):
        assert np.array_equal(np.concatenate([p[k] for p in parts]), whole[k])


def test_the_contour_does_not_depend_on_the_speaker_pitch():
    """The same tune sung a fifth higher: the same relative levels and slopes."""
    tune = np.concatenate(
        [glide(1.0, 4.0, 0.6), glide(2 ** (4 / 12), -9.0, 0.9), glide(2 ** (-5 / 12), 5.0, 0.7)]
    )
    low, high = pitch_part(voiced(110.0 * tune)), pitch_part(voiced(110.0 * 2 ** (7 / 12) * tune))
    np.testing.assert_allclose(low, high, atol=0.1)
    assert np.abs(low[STEPS : 2 * STEPS]).max() > 2  # the levels really move


def test_rising_and_falling_tones_have_slopes_of_their_sign():
    rising = pitch_part(voiced(glide(110.0, 8.0, 2.2)))
    falling = pitch_part(voiced(glide(180.0, -8.0, 2.2)))
    per_frame = 8.0 / (2.2 * SR / CONFIG.hop)
    slopes = slice(2 * STEPS, 3 * STEPS)
    np.testing.assert_allclose(rising[slopes], per_frame, atol=0.02)
    np.testing.assert_allclose(falling[slopes], -per_frame, atol=0.02)
    assert rising[:STEPS].min() == 1.0  # voiced throughout


def test_an_unvoiced_window_has_no_contour(rng):
    noise = (0.1 * rng.standard_normal(int(2.2 * SR))).astype(np.float32)
    assert np.all(pitch_part(noise) == 0)
