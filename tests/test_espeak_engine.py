"""espeak-ng through its library: the command line's samples, bit for bit, and errors that
leave the helper working."""

import io
import subprocess

import numpy as np
import pytest
import soundfile as sf

from training import espeak_engine, tts


@pytest.fixture(scope="module")
def engine():
    engine = espeak_engine.Engine()
    yield engine
    engine.close()


def _command_line(text: str, voice: str, speed: int, pitch: int) -> np.ndarray:
    command = ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text]
    return sf.read(
        io.BytesIO(subprocess.run(command, capture_output=True, check=True).stdout), dtype="int16"
    )[0]


def test_the_library_is_what_the_recipe_machine_has():
    assert espeak_engine.library_available()  # .ci/run installs espeak-ng, which brings it


def test_every_utterance_equals_the_command_line_whatever_came_before(engine):
    """One loaded engine keeps state between utterances (the same sentence twice came out
    up to 200 samples apart): each must be spoken by a fresh fork."""
    rng = np.random.default_rng(3)
    sentence = "The number you have dialed is not in service."
    requests = [("en-us+m3", 160, 50, sentence), ("en-us+m3", 160, 50, sentence)]  # the same, twice
    for heldout in (False, True):
        for language in ("en", "zh", "en"):
            voice = tts.pick_voice(language, rng, heldout)
            if voice.name != "flite":
                text = tts.to_pinyin("您拨打的号码是空号") if language == "zh" else "Sorry, the line is busy."
                requests.append((voice.spec, voice.speed, voice.pitch, text))
    requests.append(requests[0])
    for voice, speed, pitch, text in requests:
        ours = np.frombuffer(engine.speak(text, voice, speed, pitch), dtype="<i2")
        assert len(ours) > espeak_engine.RATE // 2
        assert np.array_equal(ours, _command_line(text, voice, speed, pitch)), (voice, speed, pitch)


def test_speak_gives_the_recipe_the_same_audio_both_ways():
    voice = tts.Voice("zh", tts.ZH_VOICE, "f2", 150, 40, warp=47)
    for text in ("您拨打的电话已关机", "请稍后再拨"):
        assert np.array_equal(tts.speak(text, voice), tts.speak(text, voice, command_line=True))


def test_a_bad_request_is_reported_and_the_helper_goes_on(engine):
    with pytest.raises(espeak_engine.EngineError, match="no espeak-ng voice 'qqqxx'"):
        engine.speak("hello", "qqqxx", 160, 50)  # the command line refuses it too
    assert len(engine.speak("hello", "en-us", 160, 50)) > 0
