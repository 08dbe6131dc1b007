"""The streaming session: chunking never changes the result; bad input fails clearly."""

import numpy as np
import pytest
import soundfile as sf

from audio_classifier import (
    Classifier,
    ClassifierConfig,
    EmptyAudioError,
    InvalidSamplesError,
    SessionClosedError,
    UnreadableAudioError,
    UnsupportedEncodingError,
    g711,
    synth,
)
from audio_classifier.channels import ChannelInfo

from .conftest import FIXTURES


def _call(rng) -> np.ndarray:
    """Ringback, then a vacant-code SIT with nothing after it, then, too late to be what the
    SIT announced, speech-like sound and busy tone."""
    return np.concatenate(
        [
            synth.cadenced(synth.spec("CN", "ringback"), 5.5, start_offset_s=0.3),
            synth.sit("vc"),
            synth.silence(3.0),
            synth.speech_like(1.5, rng),
            synth.cadenced(synth.spec("CN", "busy"), 3.0),
        ]
    )


def _feed(classifier, data, chunk, **session_args):
    session = classifier.open_session(**session_args)
    for i in range(0, len(data), chunk):
        session.feed(data[i : i + chunk])
    return session.close()


def _odd_chunks(classifier, data, rng, **session_args):
    session = classifier.open_session(**session_args)
    i = 0
    while i < len(data):
        n = int(rng.integers(1, 3001))
        session.feed(data[i : i + n])
        i += n
    return session.close()


@pytest.mark.parametrize("early", [True, False])
def test_chunking_never_changes_the_final_decision(early, rng):
    classifier = Classifier(ClassifierConfig(early_decision=early))
    x = _call(rng)
    pcm = (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()
    args = {"sample_rate": 8000, "encoding": "pcm_s16le"}
    reference = _feed(classifier, pcm, len(pcm), **args).to_dict()
    assert _feed(classifier, pcm, 320, **args).to_dict() == reference  # 20 ms frames
    assert _feed(classifier, pcm, 333, **args).to_dict() == reference  # splits samples
    assert _odd_chunks(classifier, pcm, rng, **args).to_dict() == reference
    assert reference["label"] == "vacant"
    if early:
        assert reference["decided_at_s"] < 10.0  # decided on the SIT, before what came later


@pytest.mark.parametrize("rate", [16000, 44100])
def test_chunk_invariance_with_resampling(rate, rng, classifier):
    from audio_classifier.resample import Resampler

    x = synth.cadenced(synth.spec("NANP", "busy"), 4.0, sample_rate=rate)
    args = {"sample_rate": rate, "encoding": "float32"}
    whole = _feed(classifier, x, len(x), **args).to_dict()
    assert _feed(classifier, x, rate // 50, **args).to_dict() == whole
    assert _odd_chunks(classifier, x, rng, **args).to_dict() == whole
    assert whole["label"] == "busy_tone"
    assert Resampler(rate, 8000).up == 8000 // np.gcd(rate, 8000)


def test_g711_stream(rng, classifier):
    x = synth.cadenced(synth.spec("ITU", "congestion"), 3.0)
    codes = g711.encode(x, "alaw").tobytes()
    whole = _feed(classifier, codes, len(codes), sample_rate=8000, encoding="alaw")
    assert whole.label == "congestion_tone"
    assert _feed(classifier, codes, 160, sample_rate=8000, encoding="alaw").to_dict() == whole.to_dict()


class _BlockRecorder:
    """A channel (factory and stream in one) that records the blocks it is given."""

    def __init__(self, grid: tuple[int, int] | None = None) -> None:
        self.info = ChannelInfo("recorder", evidence_grid=grid)
        self.blocks: list[tuple[int, int]] = []

    def open(self) -> "_BlockRecorder":
        return self

    def reload(self) -> None:
        return None

    def pending(self) -> None:
        return None

    def prepare(self, samples: np.ndarray, start_sample: int) -> None:
        return None

    def heard(self) -> None:
        return None

    def process(self, samples: np.ndarray, start_sample: int) -> list:
        self.blocks.append((start_sample, start_sample + len(samples)))
        return []

    def finish(self) -> list:
        return []


@pytest.mark.parametrize("grid", [None, (16120, 2000)])
def test_blocks_end_on_the_evidence_grid_however_the_audio_arrives(grid, rng):
    x = synth.speech_like(5.0, rng)
    ends = []
    for chunks in ([len(x)], [160] * (len(x) // 160 + 1), rng.integers(1, 3001, 40).tolist()):
        recorder = _BlockRecorder(grid)
        session = Classifier(ClassifierConfig(block_s=0.25), channels=[recorder]).open_session(
            8000, "float32"
        )
        i = 0
        for n in chunks:
            session.feed(x[i : i + n])
            i += n
        session.feed(x[i:])
        session.close()
        starts = [a for a, _ in recorder.blocks]
        assert starts == [0] + [b for _, b in recorder.blocks[:-1]]  # contiguous, from the start
        assert recorder.blocks[-1][1] == len(x)
        ends.append([b for _, b in recorder.blocks])
    assert ends[0] == ends[1] == ends[2]
    phase = grid[0] % 2000 if grid else 0
    assert all((end - phase) % 2000 == 0 for end in ends[0][:-1])
    assert ends[0][0] == (phase or 2000)


@pytest.mark.parametrize("rate", [8000, 16000, 44100])
def test_each_block_is_analysed_on_the_call_that_completes_it(rate, rng):
    """Decoded audio waits unresampled until it completes a block; the block is still
    analysed on the very call whose audio completes it, as if each chunk had been resampled
    as it came (what a dialer that hangs up on the decision depends on)."""
    from audio_classifier.resample import Resampler

    x = synth.cadenced(synth.spec("CN", "busy"), 3.0, sample_rate=rate)
    recorder = _BlockRecorder()
    session = Classifier(ClassifierConfig(block_s=0.25), channels=[recorder]).open_session(rate, "float32")
    reference = Resampler(rate, 8000)
    ready = 0
    for i in range(0, len(x), rate // 50):  # 20 ms chunks
        session.feed(x[i : i + rate // 50])
        ready += len(reference.process(x[i : i + rate // 50]))
        assert len(recorder.blocks) == ready // 2000
    session.close()
    assert recorder.blocks[-1][1] == ready + len(reference.flush())


def test_truncation_is_noticed_on_the_call_that_passes_the_limit():
    classifier = Classifier(ClassifierConfig(max_duration_s=2.1, early_decision=False))
    x = synth.cadenced(synth.spec("CN", "ringback"), 3.0, sample_rate=16000)
    session = classifier.open_session(16000, "float32")
    fed = 0
    while session.wants_audio:
        session.feed(x[fed : fed + 320])
        fed += 320
    # the resampler's output for input up to sample n lags it by its filter's delay, so the
    # limit (2.1 s = 33,600 input samples) is passed a few chunks later, never a block later
    assert 33_600 < fed <= 33_600 + 5 * 320
    assert session.close().analysed_s == pytest.approx(2.1)


def test_the_callers_array_can_be_reused_after_feed(rng):
    """Audio may wait inside the session between calls: a caller that refills one array for
    every chunk must not change what the session analyses."""
    # tones alone: blocks from the stream's start, so some end exactly where a chunk ends
    classifier = Classifier(
        ClassifierConfig(model_path=None, samples_path=None, asr_model=None, early_decision=False)
    )
    x = _call(rng).astype(np.float32)
    reference = _feed(classifier, x, 160, sample_rate=8000, encoding="float32").to_dict()
    session = classifier.open_session(8000, "float32")
    frame = np.empty(160, dtype=np.float32)
    for i in range(0, len(x) - len(x) % 160, 160):
        frame[:] = x[i : i + 160]
        session.feed(frame)
    frame[:] = 0
    session.feed(x[len(x) - len(x) % 160 :].copy())
    assert session.close().to_dict() == reference


def test_a_model_decision_comes_the_moment_its_window_ends(classifier):
    """With the shipped model, every early decision lands on a window end (1.515 s + k x 0.25 s),
    not on the next block boundary after it."""
    first, step = next(c for c in classifier.channels if c.info.name == "model").info.evidence_grid
    decided = []
    for name in ("vacant", "powered_off", "redial_later", "human"):
        path = FIXTURES / "speech" / f"{name}.wav"
        decision = classifier.classify_file(path)
        if decision.decided_at_s < sf.info(path).duration - 0.01:  # early, not at the end of the clip
            decided.append(round(decision.decided_at_s * 8000))
    assert len(decided) >= 3, "the fixtures were not decided early"
    assert all(at >= first and (at - first) % step == 0 for at in decided)


def test_interim_updates_then_final(classifier):
    x = synth.cadenced(synth.spec("CN", "busy"), 5.0)
    session = classifier.open_session(8000, "float32")
    updates = []
    for i in range(0, len(x), 160):
        updates += session.feed(x[i : i + 160])
    assert updates and updates[-1].final and updates[-1].label == "busy_tone"
    assert all(not u.final for u in updates[:-1])
    assert session.feed(x[:160]) == []  # final: further audio is ignored
    final = session.close()
    assert final == updates[-1]
    assert final.decided_at_s == pytest.approx(final.analysed_s)
    assert 1.0 < final.decided_at_s < 2.5


def test_progress_labels_never_end_a_session_early(classifier):
    x = synth.cadenced(synth.spec("CN", "ringback"), 12.0)
    session = classifier.open_session(8000, "float32")
    for i in range(0, len(x), 800):
        session.feed(x[i : i + 800])
        assert not session.final
    decision = session.close()
    assert decision.label == "ringback" and decision.decided_at_s == pytest.approx(12.0)


def test_max_duration_truncates_and_says_so(tmp_path):
    classifier = Classifier(ClassifierConfig(max_duration_s=2.0))
    x = synth.cadenced(synth.spec("CN", "ringback"), 7.0)
    path = tmp_path / "long.wav"
    sf.write(path, x, 8000)
    decision = classifier.classify_file(path)
    assert decision.truncated and decision.analysed_s == pytest.approx(2.0)
    assert any("first 2 s of 7.0 s" in note for note in decision.notes)
    stream = classifier.open_session(8000, "float32")
    stream.feed(x)
    assert stream.close().analysed_s == pytest.approx(2.0)


def test_closed_session_and_empty_stream(classifier):
    session = classifier.open_session(8000, "pcm_s16le")
    with pytest.raises(EmptyAudioError, match="without any audio"):
        session.close()
    with pytest.raises(SessionClosedError):
        session.feed(b"\x00\x00")


# -- bad input: every case gets a specific error ---------------------------------------------


def test_bad_files(tmp_path, classifier):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(EmptyAudioError, match="0 bytes"):
        classifier.classify_file(empty)

    no_frames = tmp_path / "no_frames.wav"
    sf.write(no_frames, np.zeros(0, dtype=np.float32), 8000)
    with pytest.raises(EmptyAudioError, match="no audio frames"):
        classifier.classify_file(no_frames)

    text = tmp_path / "notes.wav"
    text.write_text("this is not audio at all " * 20)
    with pytest.raises(UnreadableAudioError, match="cannot decode"):
        classifier.classify_file(text)

    good = tmp_path / "good.wav"
    sf.write(good, synth.tone((450.0,), 1.0), 8000)
    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(good.read_bytes()[:30])
    with pytest.raises(UnreadableAudioError, match="cannot decode"):
        classifier.classify_file(truncated)

    with pytest.raises(UnreadableAudioError, match="no such file"):
        classifier.classify_file(tmp_path / "missing.wav")

    one_byte = tmp_path / "tiny.raw"
    one_byte.write_bytes(b"\x01")
    with pytest.raises(EmptyAudioError, match="less than one sample"):
        classifier.classify_file(one_byte)

    nan = tmp_path / "nan.wav"
    data = synth.tone((450.0,), 0.5)
    data[100] = np.nan
    sf.write(nan, data, 8000, subtype="FLOAT")
    with pytest.raises(InvalidSamplesError, match="NaN or infinite"):
        classifier.classify_file(nan)

    with pytest.raises(UnsupportedEncodingError, match="supported"):
        classifier.classify_file(good, raw_encoding="gsm")


def test_bad_arrays(classifier):
    with pytest.raises(EmptyAudioError):
        classifier.classify_array(np.zeros(0, dtype=np.float32), 8000)
    with pytest.raises(UnsupportedEncodingError, match="1-D or 2-D"):
        classifier.classify_array(np.zeros((2, 2, 2), dtype=np.float32), 8000)
    with pytest.raises(InvalidSamplesError):
        classifier.classify_array(np.array([0.0, np.inf]), 8000)
    with pytest.raises(UnsupportedEncodingError, match="sample rate"):
        classifier.classify_array(np.zeros(100), 10)


def test_raw_and_container_formats_agree(tmp_path, classifier):
    x = synth.cadenced(synth.spec("NANP", "reorder"), 3.0)
    sf.write(tmp_path / "a.wav", x, 8000, subtype="ULAW")
    (tmp_path / "a.ul").write_bytes(g711.encode(x, "mulaw").tobytes())
    (tmp_path / "a.raw").write_bytes((x * 32767).astype("<i2").tobytes())
    sf.write(
        tmp_path / "a16k.flac", synth.cadenced(synth.spec("NANP", "reorder"), 3.0, sample_rate=16000), 16000
    )
    stereo = np.stack([x, np.zeros_like(x)], axis=1)
    sf.write(tmp_path / "stereo.wav", stereo, 8000)
    labels = {p.name: classifier.classify_file(p).label for p in sorted(tmp_path.iterdir())}
    assert set(labels.values()) == {"congestion_tone"}, labels
    assert classifier.classify_file(tmp_path / "stereo.wav", channel=1).label == "silence"
