"""``ChannelStream.prepare``: the file path hands a channel several blocks at once so it can
batch its work; what each block returns must not change at all."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from audio_classifier import ClassifierConfig, synth
from audio_classifier.audio import SAMPLE_RATE, open_file
from audio_classifier.channels.fingerprint import FingerprintChannel
from audio_classifier.samples import SampleLibrary

from .conftest import FIXTURES

REAL_PROMPT = Path("/usr/share/asterisk/sounds/fr_CA_f_June/conf-onlyperson.wav")
"""A real announcement voice (asterisk-core-sounds-fr-wav; .ci/run installs it)."""

SHORT_PROMPTS = (
    (Path("/usr/share/asterisk/sounds/fr_CA_f_June/vm-goodbye.wav"), "human"),
    (Path("/usr/share/asterisk/sounds/fr_CA_f_June/auth-thankyou.wav"), "voicemail"),
)
"""Short real prompts, enrolled with two labels (the label is the library's: any will do)."""

BLOCK = 2000


def _read(path: Path) -> np.ndarray:
    info, chunks = open_file(path)
    assert info.sample_rate == SAMPLE_RATE and info.channels == 1, path
    return np.concatenate([np.asarray(c, dtype=np.float32).reshape(-1) for c in chunks])


def _signals() -> dict[str, np.ndarray]:
    """The fixtures, and a real prompt played call-shaped: ringback, a SIT, the prompt,
    noise over all of it."""
    rng = np.random.default_rng(5)
    signals = {path.name: _read(path) for path in sorted(FIXTURES.rglob("*.wav"))}
    ringback = synth.cadenced(synth.spec("NANP", "ringback"), 4.5)
    signals["ringback + SIT + real prompt, noisy"] = synth.add_noise(
        np.concatenate([ringback, synth.sit("vc"), _read(REAL_PROMPT)]), 20.0, rng, reference=0.01
    )
    # over 10 s of other audio first (the fingerprint channel keeps 10 s of the call), two short
    # enrolled prompts of two labels, each through GSM under pink noise at 10 dB: matched by
    # their own peaks, below MIN_VOTES
    from training.channel import gsm_round_trip, pink_noise

    def coded(x: np.ndarray) -> np.ndarray:
        y = gsm_round_trip(np.concatenate([synth.silence(1.0), x, synth.silence(1.0)]))
        noise = pink_noise(len(y), rng)
        return (y + noise * np.sqrt(np.mean(y**2) / np.mean(noise**2) / 10**1.0)).astype(np.float32)

    lead = synth.add_noise(
        np.concatenate([synth.speech_like(6.0, rng), synth.cadenced(synth.spec("CN", "ringback"), 5.0)]),
        25.0,
        rng,
        reference=0.03,
    )
    signals["11 s of speech and ringback, then two short prompts over GSM"] = np.concatenate(
        [lead, *(coded(_read(prompt)) for prompt, _ in SHORT_PROMPTS)]
    ).astype(np.float32)
    return signals


SIGNALS = _signals()


def _raw(evidence) -> tuple:
    """A claim as it is, floats unrounded (``to_dict`` rounds, which would hide a change in
    the last bits that a threshold could still see)."""
    return (
        evidence.channel,
        evidence.label,
        evidence.score,
        evidence.start_s,
        evidence.end_s,
        repr(evidence.detail),
    )


def _run(factory, samples: np.ndarray, span_blocks: int | None) -> list:
    """Evidence per block (and at the end), each block fed as the session feeds it; with
    *span_blocks*, ``prepare`` first sees every run of that many blocks."""
    stream = factory.open()
    out = []
    for start in range(0, len(samples), BLOCK * (span_blocks or 1)):
        span = samples[start : start + BLOCK * (span_blocks or 1)]
        if span_blocks:
            stream.prepare(span, start)
        for offset in range(0, len(span), BLOCK):
            block = span[offset : offset + BLOCK]
            out.append([_raw(e) for e in stream.process(block, start + offset)])
            pending = stream.pending()
            out.append(None if pending is None else _raw(pending))
    out.append([_raw(e) for e in stream.finish()])
    return out


@pytest.fixture(scope="module")
def factories(classifier, tmp_path_factory):
    """The default classifier's tone and model channels, and a fingerprint channel over a
    library holding the real prompt (one signal plays it call-shaped)."""
    loaded = {c.info.name: c for c in classifier.channels}
    assert {"tone", "model", "fingerprint"} <= set(loaded), "the default classifier lost a channel"
    path = tmp_path_factory.mktemp("library") / "samples.sqlite"
    with SampleLibrary(path, create=True) as library:
        library.add(_read(REAL_PROMPT), label="vacant", lang="fr", carrier="test")
        for prompt, label in SHORT_PROMPTS:
            library.add(_read(prompt), label=label, lang="fr", carrier="test")
    loaded["fingerprint"] = FingerprintChannel(path)
    return loaded


@pytest.mark.parametrize("channel", ["tone", "model", "fingerprint"])
@pytest.mark.parametrize("span_blocks", [2, 8, 3])
def test_prepare_changes_nothing_a_channel_reports(factories, channel, span_blocks):
    factory = factories[channel]
    reported = 0
    for name, samples in SIGNALS.items():
        plain = _run(factory, samples, None)
        assert _run(factory, samples, span_blocks) == plain, name
        reported += sum(len(item) for item in plain if isinstance(item, list))
    assert reported > 0, f"the {channel} channel reported nothing on any signal: the check proves nothing"
    if channel == "fingerprint":  # claims confirmed by their peaks are compared too
        claims = [c for item in plain if isinstance(item, list) for c in item]
        assert any("'agreement'" in c[5] for c in claims), claims


def test_the_file_path_prepares_blocks_and_decides_as_a_live_stream(classifier):
    """End to end: a file (read in blocks of several seconds' worth) and the same audio
    streamed in 20 ms chunks give the same decision, evidence and all."""
    assert ClassifierConfig().block_s * SAMPLE_RATE == BLOCK
    for path in [REAL_PROMPT, *sorted((FIXTURES / "speech").glob("*.wav"))[:6]]:
        info, chunks = open_file(path)
        samples = np.concatenate([np.asarray(c, dtype=np.float32).reshape(-1) for c in chunks])
        session = classifier.open_session(info.sample_rate, "float32")
        for i in range(0, len(samples), info.sample_rate // 50):
            session.feed(samples[i : i + info.sample_rate // 50])
            if not session.wants_audio:
                break
        streamed = session.close()
        whole = classifier.classify_file(path)
        assert (whole.label, whole.confidence, whole.score, whole.decided_at_s) == (
            streamed.label,
            streamed.confidence,
            streamed.score,
            streamed.decided_at_s,
        ), path.name
        assert [_raw(e) for e in whole.evidence] == [_raw(e) for e in streamed.evidence], path.name
