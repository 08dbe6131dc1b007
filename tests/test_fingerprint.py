"""Fingerprint matching of enrolled carrier prompts: robustness, negatives, the library."""

import csv
import dataclasses
import io
import itertools
import os
import subprocess
import sys
import zlib

import numpy as np
import pytest
import soundfile as sf

from audio_classifier import Classifier, ClassifierConfig, synth
from audio_classifier.channels.fingerprint import VERIFY_VOTES, FingerprintChannel, FingerprintStream
from audio_classifier.errors import ConfigError, ModelError
from audio_classifier.fingerprint import FingerprintConfig, LandmarkStream, Matcher, _running_max, landmarks
from audio_classifier.resample import Resampler
from audio_classifier.samples import MIN_VOTES, SampleLibrary, read_audio
from training.channel import gsm_round_trip

ENROLLED = {
    "vacant": ("en-us", "Sorry, the number you dialed does not exist, please check it and dial later"),
    "suspended": ("en-us", "Sorry, the number you dialed has been suspended"),
    "busy": ("en-gb", "The subscriber you dialed is busy now, please redial later"),
    "powered_off": ("cmn-latn-pinyin", "nin2 bo1 da3 de5 dian4 hua4 yi3 guan1 ji1"),
}
# Other recordings: other speakers (voice variants) saying the same or other wordings.
# (espeak-ng in the same voice reproduces an enrolled opening almost bit for bit, even at
# another rate: that is a splice of an enrolled fragment, which matches while the shared
# fragment plays; no fingerprint can tell those apart.)
NOT_ENROLLED = [
    ("en-us+m3", "Sorry, the number you dialed cannot be connected at the moment", 160),
    ("gmw/en+f2", "The subscriber you dialed is not convenient to answer now", 175),  # en-gb ignores +f2
    ("en-us+f3", "Sorry, the number you dialed does not exist, please check it and dial later", 175),
    ("cmn-latn-pinyin+m2", "nin2 bo1 da3 de5 dian4 hua4 yi3 ting2 ji1", 150),
    ("cmn-latn-pinyin+f4", "nin2 bo1 da3 de5 dian4 hua4 yi3 guan1 ji1", 175),
    ("en-us+m1", "Hello, this is John, please leave a message after the tone", 175),
]


def speak(voice: str, text: str, speed: int = 175, pitch: int = 50) -> np.ndarray:
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text],
        capture_output=True,
        check=True,
    ).stdout
    x, rate = sf.read(io.BytesIO(wav), dtype="float32")
    r = Resampler(rate, 8000)
    return np.concatenate([r.process(x), r.flush()])


@pytest.fixture(scope="module")
def prompts() -> dict[str, np.ndarray]:
    return {label: speak(*spec) for label, spec in ENROLLED.items()}


@pytest.fixture(scope="module")
def library_path(tmp_path_factory, prompts):
    path = tmp_path_factory.mktemp("lib") / "samples.sqlite"
    with SampleLibrary(path, create=True) as library:
        for label, audio in prompts.items():
            library.add(audio, label=label, lang="en", carrier="test", note=ENROLLED[label][1])
    return path


@pytest.fixture(scope="module")
def classifier(library_path):
    return Classifier(ClassifierConfig(model_path=None, asr_model=None, samples_path=str(library_path)))


def degrade(kind: str, x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A degraded query and the time (s) at which the prompt starts in it."""
    start = 0.0
    if kind == "mulaw":
        y = synth.g711_channel(x, "mulaw")
    elif kind == "alaw":
        y = synth.g711_channel(x, "alaw")
    elif kind == "gsm":
        y = gsm_round_trip(x)
    elif kind == "noise_10db":
        y = synth.add_noise(x, 10.0, rng)
    elif kind == "gain_+6db":
        y = np.clip(x * 2.0, -1, 1)
    elif kind == "gain_-6db":
        y = x * 0.5
    elif kind == "offset":
        start = float(rng.uniform(0.2, 2.0))
        y = np.concatenate([synth.silence(start), x])
    elif kind == "mid_prompt":
        y = x[int(len(x) * 0.4) :]
    elif kind == "ringback_first":
        start = 5.0
        y = np.concatenate([synth.cadenced(synth.spec("CN", "ringback"), start, amplitude=0.2), x])
    elif kind == "repeated":
        y = np.concatenate([x, synth.silence(0.5), x])
    else:
        raise ValueError(kind)
    return y.astype(np.float32), start


KINDS = [
    "mulaw",
    "alaw",
    "gsm",
    "noise_10db",
    "gain_+6db",
    "gain_-6db",
    "offset",
    "mid_prompt",
    "ringback_first",
    "repeated",
]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("label", list(ENROLLED))
def test_degraded_enrolled_prompts_are_identified(classifier, prompts, label, kind):
    # a stable seed: hash() of strings changes with every process (PYTHONHASHSEED), and the
    # 2.5 s Mandarin prompt goes unmatched in about 1 of 40 draws of 10 dB white noise
    rng = np.random.default_rng(zlib.crc32(f"{label}/{kind}".encode()))
    query, start = degrade(kind, prompts[label], rng)
    decision = classifier.classify_array(query, 8000)
    matches = [e for e in decision.evidence if e.channel == "fingerprint"]
    assert matches and matches[0].label == label, decision.evidence
    assert decision.label == label and decision.final
    # decided before the prompt ends (prompts that open with the same words as another
    # enrolled prompt can only be told apart where they differ; benchmarks/ has the median)
    assert decision.decided_at_s - start < len(prompts[label]) / 8000
    assert matches[0].detail["carrier"] == "test"


@pytest.mark.parametrize("spec", NOT_ENROLLED, ids=lambda s: s[1][:30])
def test_non_enrolled_prompts_do_not_match(classifier, spec):
    decision = classifier.classify_array(synth.g711_channel(speak(*spec), "alaw"), 8000)
    assert not [e for e in decision.evidence if e.channel == "fingerprint"], decision.evidence


@pytest.mark.parametrize("kind", ["speech_like", "music", "tones", "noise"])
def test_other_audio_does_not_match(classifier, kind):
    from training.music import music

    rng = np.random.default_rng(5)
    x = {
        "speech_like": lambda: synth.speech_like(6.0, rng),
        "music": lambda: music(8.0, rng),
        "tones": lambda: np.concatenate(
            [
                synth.cadenced(synth.spec("NANP", "busy"), 4.0),
                synth.sit("vc"),
                synth.cadenced(synth.spec("UK", "ringback"), 4.0),
            ]
        ),
        "noise": lambda: (0.1 * rng.standard_normal(48000)).astype(np.float32),
    }[kind]()
    decision = classifier.classify_array(x, 8000)
    assert not [e for e in decision.evidence if e.channel == "fingerprint"]


@pytest.mark.parametrize("shape", [(40, 208), (3, 208), (1, 5), (0, 208)])
def test_running_max_is_the_windowed_maximum(shape):
    """Peak picking's max filter: each value's maximum over ±half neighbours, fewer at the edges."""
    values = np.random.default_rng(5).standard_normal(shape).astype(np.float32)
    for axis, half in ((1, 5), (0, 3), (1, 1), (0, 2), (1, 7), (0, 0)):
        expected = np.empty_like(values)
        for i in range(values.shape[axis]):
            window = np.take(
                values, range(max(0, i - half), min(values.shape[axis], i + half + 1)), axis=axis
            )
            index = [slice(None)] * 2
            index[axis] = i
            expected[tuple(index)] = window.max(axis=axis)
        assert np.array_equal(_running_max(values, half, axis), expected)


def test_landmarks_do_not_depend_on_chunking(prompts):
    x = prompts["vacant"]
    whole = landmarks(x)
    for chunk in (80, 333, 4000):
        stream = LandmarkStream()
        parts = [stream.push(x[i : i + chunk]) for i in range(0, len(x), chunk)] + [stream.finish()]
        assert np.array_equal(np.concatenate([p[0] for p in parts]), whole[0])
        assert np.array_equal(np.concatenate([p[1] for p in parts]), whole[1])


def test_an_anchor_is_paired_as_soon_as_its_targets_are_known(prompts):
    """An anchor with ``fan_out`` targets found needs no more of its 0.5 s target zone: its
    landmarks come out soon after the audio that made them, not a whole zone later."""
    x = prompts["vacant"]
    stream = LandmarkStream()
    config = stream.config
    chunk = config.hop
    lags = []
    for i in range(0, len(x), chunk):
        _, anchors = stream.push(x[i : i + chunk])
        heard = (i + chunk - config.n_fft) / config.hop  # frames fully received
        lags += (heard - anchors).tolist()
    zone = config.max_dt + config.peak_frames  # a whole target zone, and its peaks judged
    assert max(lags) <= zone
    assert np.median(lags) < 0.7 * zone


def test_library_operations_and_reload(tmp_path, prompts):
    path = tmp_path / "lib.sqlite"
    with SampleLibrary(path, create=True) as library:
        first, new = library.add(prompts["vacant"], label="vacant", carrier="A")
        assert new and library.add(prompts["vacant"], label="vacant") == (first, False)  # same audio
        with pytest.raises(ConfigError, match="unknown label"):
            library.add(prompts["busy"], label="engaged")
        with pytest.raises(ConfigError, match="too little"):
            library.add(synth.silence(2.0), label="busy")
    channel = FingerprintChannel(path)
    assert channel.samples == 1
    running = channel.open()  # a session that started before the enrolment
    with SampleLibrary(path) as library:
        second, _ = library.add(prompts["busy"], label="busy")
        assert [s.id for s in library.list()] == [first, second]
    query = synth.g711_channel(prompts["busy"], "mulaw")
    classifier = Classifier(channels=[channel])
    assert not [e for e in classifier.classify_array(query, 8000).evidence if e.label == "busy"]
    assert channel.reload() == 2  # takes effect without retraining or restarting
    assert classifier.classify_array(query, 8000).label == "busy"
    assert running is not None
    with SampleLibrary(path) as library:
        assert library.remove(second) and not library.remove(second)
        out = tmp_path / "export.csv"
        assert library.export(out) == 1 and "vacant" in out.read_text()
    with pytest.raises(ConfigError, match="not found"):
        SampleLibrary(tmp_path / "missing.sqlite")
    (tmp_path / "junk.sqlite").write_text("not a database" * 100)
    with pytest.raises(ModelError, match="not a sample library"):
        SampleLibrary(tmp_path / "junk.sqlite")


def test_samples_cli(tmp_path, prompts):
    for label in ("vacant", "busy"):
        sf.write(tmp_path / f"{label}.wav", prompts[label], 8000)
    (tmp_path / "broken.wav").write_text("nope")
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label,carrier\nvacant.wav,vacant,X\nbroken.wav,busy,X\n")
    lib = tmp_path / "lib.sqlite"

    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "audio_classifier.cli", *map(str, args)],
            capture_output=True,
            text=True,
            timeout=120,
        )

    imported = cli("samples", "import", manifest, "--samples", lib)
    assert (
        imported.returncode == 1
        and "added: vacant.wav" in imported.stdout
        and "failed: broken.wav" in imported.stderr
    )
    added = cli(
        "samples", "add", tmp_path / "busy.wav", "--label", "busy", "--carrier", "Y", "--samples", lib
    )
    assert added.returncode == 0 and "as sample 2" in added.stdout
    listed = cli("samples", "list", "--samples", lib)
    assert "vacant" in listed.stdout and "busy" in listed.stdout
    query = tmp_path / "q.wav"
    sf.write(query, synth.add_noise(prompts["busy"], 12.0, np.random.default_rng(1)), 8000)
    result = cli("classify", query, "--samples", lib, "--no-model", "--no-asr")
    assert '"label": "busy"' in result.stdout and '"channel": "fingerprint"' in result.stdout
    assert cli("samples", "remove", "2", "--samples", lib).returncode == 0
    assert cli("samples", "remove", "2", "--samples", lib).returncode == 1
    assert cli("samples", "export", tmp_path / "out.csv", "--samples", lib).returncode == 0
    to_stdout = cli("samples", "export", "-", "--samples", lib)
    assert to_stdout.returncode == 0 and to_stdout.stdout.startswith("id,path,label")
    assert not (tmp_path / "-").exists()


def test_shipped_library_matches_its_reference_prompt():
    from training import samples as recipe

    channel = FingerprintChannel(recipe.Path(__file__).resolve().parents[1] / "models" / "samples.sqlite")
    assert channel.samples >= 50
    label, _, text, voice = next(p for p in recipe.reference_prompts() if p[2] == "您拨打的电话已关机")
    audio = recipe.tts.speak(text, voice)
    assert label == "powered_off"
    query = np.concatenate(
        [synth.cadenced(synth.spec("CN", "ringback"), 3.0), synth.g711_channel(audio, "alaw")]
    )
    decision = Classifier(channels=[channel]).classify_array(query, 8000)
    assert decision.label == "powered_off"


def test_best_votes_is_what_best_reports(prompts, library_path):
    """``FingerprintStream`` skips ``Matcher.best`` while ``best_votes`` is under the vote
    floor; the shortcut must be the number ``best`` would give."""
    with SampleLibrary(library_path) as library:
        index, infos = library.load_index()
    vacant = next(i for i, info in infos.items() if info.label == "vacant")
    matcher = Matcher(index)
    assert matcher.best_votes == 0 and matcher.best() is None
    x = prompts["vacant"][4000:]  # the recording from 0.5 s in
    stream = LandmarkStream()
    seen = []
    for i in range(0, len(x), 2000):
        matcher.add(*stream.push(x[i : i + 2000]))
        best = matcher.best()
        assert matcher.best_votes == (best.votes if best else 0)
        seen.append(matcher.best_votes)
    assert seen[-1] > 50 and best.sample_id == vacant and seen == sorted(seen)


def test_samples_add_without_a_library_writes_the_users_own_never_the_shipped_one(tmp_path):
    import hashlib

    from audio_classifier.samples import DEFAULT_LIBRARY, SampleLibrary

    shipped_before = hashlib.sha256(DEFAULT_LIBRARY.read_bytes()).hexdigest()
    shipped_count = len(SampleLibrary(DEFAULT_LIBRARY).list())
    data = tmp_path / "data"
    env = {**os.environ, "AUDIO_CLASSIFIER_DATA": str(data)}
    env.pop("AUDIO_CLASSIFIER_SAMPLES", None)
    prompt = tmp_path / "=HYPERLINK(x).wav"
    sf.write(prompt, 0.1 * np.random.default_rng(0).standard_normal(24000), 8000)  # peaks to fingerprint

    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "audio_classifier.cli", *map(str, args)],
            capture_output=True, text=True, timeout=120, env=env,
        )  # fmt: skip

    added = cli("samples", "add", prompt, "--label", "busy_tone", "--note", "=cmd|' /C calc'!A0")
    assert added.returncode == 0, added.stderr
    assert f"made your sample library {data / 'samples.sqlite'} from the shipped one" in added.stderr
    assert hashlib.sha256(DEFAULT_LIBRARY.read_bytes()).hexdigest() == shipped_before
    assert len(SampleLibrary(data / "samples.sqlite").list()) == shipped_count + 1
    listed = cli("samples", "list")
    assert listed.stdout.splitlines()[0] == str(data / "samples.sqlite")  # read from now on
    exported = tmp_path / "out.csv"
    assert cli("samples", "export", exported).returncode == 0
    text = exported.read_text()
    assert "'=cmd|" in text and ",=cmd" not in text  # no formula for a spreadsheet
    again = tmp_path / "again.sqlite"
    rows = [r for r in csv.DictReader(open(exported)) if r["note"].endswith("A0")]
    assert rows[0]["note"].startswith("'=")
    reimport = tmp_path / "reimport.csv"
    with open(reimport, "w", newline="") as handle:
        writer = csv.DictWriter(handle, rows[0].keys())
        writer.writeheader()
        writer.writerows(rows)
    assert cli("samples", "import", reimport, "--samples", again).returncode == 0
    assert SampleLibrary(again).list()[0].note == "=cmd|' /C calc'!A0"  # the apostrophe comes off


def test_landmarks_do_not_depend_on_how_many_anchors_are_paired_at_once(monkeypatch):
    """Anchors are paired in slices of ``PAIR_ROWS`` (a whole recording at once would hold
    a matrix per anchor): any slice size gives the same landmarks, in the same order."""
    from audio_classifier import fingerprint

    x = synth.speech_like(20.0, np.random.default_rng(4))
    whole = fingerprint.landmarks(x)
    for rows in (1, 7, 300):
        monkeypatch.setattr(fingerprint, "PAIR_ROWS", rows)
        sliced = fingerprint.landmarks(x)
        assert np.array_equal(sliced[0], whole[0]) and np.array_equal(sliced[1], whole[1]), rows
    assert len(whole[0]) > 1000


def test_a_whole_recording_is_fed_in_chunks_with_the_same_landmarks(monkeypatch):
    """``landmarks`` streams a recording ``LANDMARK_CHUNK_S`` at a time (memory bounded by
    the chunk, not the recording): the landmarks equal the stream's fed all at once."""
    from audio_classifier import fingerprint

    x = synth.speech_like(25.0, np.random.default_rng(5))
    stream = LandmarkStream()
    at_once = [stream.push(x), stream.finish()]
    expected = np.concatenate([p[0] for p in at_once]), np.concatenate([p[1] for p in at_once])
    for chunk_s in (fingerprint.LANDMARK_CHUNK_S, 0.7):
        monkeypatch.setattr(fingerprint, "LANDMARK_CHUNK_S", chunk_s)
        chunked = fingerprint.landmarks(x)
        assert np.array_equal(chunked[0], expected[0]) and np.array_equal(chunked[1], expected[1])


FRENCH = "/usr/share/asterisk/sounds/fr_CA_f_June/"
"""A real recorded voice (asterisk-core-sounds-fr-wav, CC-BY-SA-3.0; .ci/run installs it)."""
FRENCH_ENROLLED = {
    "vm-goodbye": "human",  # 0.94 s: a short prompt, which a codec leaves few landmarks
    "ss-noservice": "vacant",
    "all-circuits-busy-now": "network_busy",
    "vm-intro": "voicemail",
}
FRENCH_OTHERS = ["goodbye", "hello-world", "im-sorry", "please-try-call-later", "tt-allbusy", "vm-theperson"]
"""Prompts of the same voice, not enrolled: some share words with the enrolled ones."""


def french(name: str) -> np.ndarray:
    return read_audio(FRENCH + name + ".wav")


def under_pink_noise(y: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    """*y* under pink noise at *snr_db* (of *y*'s own power)."""
    from training.channel import pink_noise

    noise = pink_noise(len(y), np.random.default_rng(seed))
    return (y + noise * np.sqrt(np.mean(y**2) / np.mean(noise**2) / 10 ** (snr_db / 10))).astype(np.float32)


def over_gsm_and_pink_noise(x: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    """*x* between 1 s of silence, through GSM, under pink noise at *snr_db*."""
    return under_pink_noise(
        gsm_round_trip(np.concatenate([synth.silence(1.0), x, synth.silence(1.0)])), snr_db, seed
    )


@pytest.fixture(scope="module")
def french_channel(tmp_path_factory) -> FingerprintChannel:
    path = tmp_path_factory.mktemp("fr") / "samples.sqlite"
    with SampleLibrary(path, create=True) as library:
        for name, label in FRENCH_ENROLLED.items():
            library.add(french(name), label=label, lang="fr", carrier="test", note=name)
    return FingerprintChannel(path)


def stream_claims(channel: FingerprintChannel, x: np.ndarray, block: int = 800) -> tuple[list, int]:
    """Every claim of one call's fingerprint stream, and the most aligned votes it had."""
    stream = channel.open()
    claims, votes = [], 0
    for i in range(0, len(x), block):
        claims += stream.process(x[i : i + block], i)
        votes = max(votes, stream._matcher.best_votes)
    return claims + stream.finish(), votes


def test_peak_agreement_tells_a_recording_from_other_audio():
    """A recording's constellation meets a coded, noisy copy of itself at its alignment,
    and neither itself elsewhere nor other speech of the same voice; the peaks its votes are
    made of are left out."""
    from audio_classifier.fingerprint import landmark_peaks, peak_agreement

    config = FingerprintConfig()
    reference = landmark_peaks(*landmarks(french("ss-noservice")), config)

    def call_peaks(x: np.ndarray) -> np.ndarray:
        stream = LandmarkStream(config, keep_peaks=True)
        stream.push(x)
        stream.finish()
        return stream.take_peaks()

    copy = call_peaks(over_gsm_and_pink_noise(french("ss-noservice"), 15.0, 0))
    start = int(round(1.0 / config.frame_s))  # the copy begins after 1 s of silence
    end = start + int(len(french("ss-noservice")) / config.hop)
    assert peak_agreement(reference, reference, 0, 0, 10_000) == (1.0, len(reference), 1.0)
    assert peak_agreement(reference, reference, 0, 0, 10_000, voted=reference)[:2] == (0.0, 0)
    assert peak_agreement(copy, reference, -start, 0, 10_000).fraction > 0.4
    for wrong in (-start - 20, -start + 31):
        assert peak_agreement(copy, reference, wrong, 0, 10_000).fraction < 0.2
    other = call_peaks(over_gsm_and_pink_noise(french("please-try-call-later"), 15.0, 0))
    assert max(peak_agreement(other, reference, -o, 0, 10_000).fraction for o in range(0, 120, 7)) < 0.2
    # only the reference peaks on the query frames asked about count
    half = peak_agreement(copy, reference, -start, start, (start + end) // 2)
    assert 0 < half.count < len(reference) and half.fraction > 0.4 and 0.3 < half.heard < 0.7


def test_confirms_needs_votes_peaks_the_whole_recording_and_both_its_ends():
    """Each condition of a confirmation by peaks, at its boundary."""
    from audio_classifier.channels import fingerprint as channel
    from audio_classifier.fingerprint import Agreement

    votes, peaks = channel.VERIFY_VOTES, channel.VERIFY_MIN_PEAKS
    share, whole = channel.WHOLE_AGREEMENT, channel.WHOLE_RECORDING
    good = Agreement(share, peaks, 0.4)
    ends = (good, good)
    assert channel.confirms(votes, Agreement(share, peaks, whole), ends)
    assert not channel.confirms(votes - 1, Agreement(share, peaks, whole), ends)
    assert not channel.confirms(votes, Agreement(share, peaks - 1, whole), ends)
    assert not channel.confirms(votes, Agreement(share - 0.01, peaks, whole), ends)
    assert not channel.confirms(votes, Agreement(1.0, peaks, whole - 0.01), ends)  # not heard whole yet
    assert not channel.confirms(10 * votes, Agreement(1.0, 3, 1.0), ends)  # a share of a handful says nothing
    assert not channel.confirms(votes, Agreement(1.0, peaks, 1.0), None)  # its end not reached yet
    unlike = Agreement(share - 0.01, peaks, 0.4)  # an end with peaks enough to tell, and unlike
    assert not channel.confirms(votes, Agreement(1.0, peaks, 1.0), (unlike, good))
    assert not channel.confirms(votes, Agreement(1.0, peaks, 1.0), (good, unlike))
    few = Agreement(0.0, peaks - 1, 0.4)  # a short prompt's end: too few peaks to tell
    assert channel.confirms(votes, Agreement(1.0, peaks, 1.0), (few, few))


def _claims_below_min_votes(
    tmp_path, enrolled: np.ndarray, label: str, query: np.ndarray
) -> tuple[list, int]:
    """Claims and the most aligned votes of *query* against a library of *enrolled* alone."""
    with SampleLibrary(tmp_path / "samples.sqlite", create=True) as library:
        library.add(enrolled, label=label, lang="en", carrier="test")
        index, infos = library.load_index()
        config = library.config
    stream = FingerprintStream(index, infos, config, index.peaks(config))
    claims, votes = [], 0
    for i in range(0, len(query), 800):
        claims += stream.process(query[i : i + 800], i)
        votes = max(votes, stream._matcher.best_votes)
    return claims + stream.finish(), votes


@pytest.mark.parametrize("seed", [0, 1])
def test_a_shared_closing_is_not_claimed_on_its_own_peaks(tmp_path, seed):
    """Carriers splice closings too ("please check the number and dial again"): another
    prompt that ends the same way gathers votes and agreeing peaks over half the recording,
    and its different opening keeps it from being claimed."""
    enrolled = speak("en-us", "We are sorry. Please check the number and dial again.", 160, pitch=44)
    other = speak(
        "en-us+m6",
        "The number you have reached is disconnected. Please check the number and dial again.",
        160,
        pitch=45,
    )
    claims, votes = _claims_below_min_votes(
        tmp_path, enrolled, "vacant", under_pink_noise(synth.g711_channel(other, "alaw"), 15.0, seed)
    )
    assert votes >= VERIFY_VOTES, votes
    assert claims == [], claims


def test_a_recording_is_not_claimed_before_its_end_is_heard(tmp_path):
    """A recording whose peaks bunch early (a pause, then a short tail) counts as heard
    whole before its ending has played: a prompt sharing only its opening must still not be
    claimed there."""
    enrolled = np.concatenate(
        [
            speak("en-us", "Sorry, the number you dialed is not answered at the moment", 157, pitch=44),
            synth.silence(1.5),
            speak("en-us", "Thank you.", 157, pitch=44),
        ]
    )
    other = speak("en-us+m6", "Sorry, the number you dialed is a vacant number", 158, pitch=45)
    for seed in (0, 1):
        claims, votes = _claims_below_min_votes(
            tmp_path / str(seed),
            enrolled,
            "no_answer",
            under_pink_noise(synth.g711_channel(other, "alaw"), 25.0, seed),
        )
        assert votes >= VERIFY_VOTES, votes
        assert claims == [], claims


@pytest.mark.parametrize("seed", [0, 1])
def test_a_shared_opening_is_not_claimed_on_its_own_peaks(tmp_path, seed):
    """A carrier's prompts share openings. Enrolled "Sorry, the number you dialed is not
    answered at the moment", another voice variant saying "Sorry, the number you dialed is
    a vacant number" under pink noise gathers 19-21 votes on the opening, and its peaks agree
    there: the recording's ending, which differs, keeps it from being claimed (the shipped
    library held this case: a vacant prompt taken for no_answer)."""
    x = speak("en-us", "Sorry, the number you dialed is not answered at the moment", 157, pitch=44)
    other = speak("en-us+m6", "Sorry, the number you dialed is a vacant number", 158, pitch=45)
    claims, votes = _claims_below_min_votes(
        tmp_path, x, "no_answer", under_pink_noise(synth.g711_channel(other, "alaw"), 25.0, seed)
    )
    assert 8 <= votes < MIN_VOTES, votes  # the opening gathers votes, short of a match by votes
    assert claims == [], claims


def test_the_peaks_a_stream_keeps_do_not_depend_on_chunking():
    x = french("vm-intro")
    whole = LandmarkStream(keep_peaks=True)
    whole.push(x)
    whole.finish()
    expected = whole.take_peaks()
    assert len(expected) > 200 and np.all(np.diff(expected) > 0)
    for chunk in (128, 800, 3333):
        stream = LandmarkStream(keep_peaks=True)
        parts = []
        for i in range(0, len(x), chunk):
            stream.push(x[i : i + chunk])
            parts.append(stream.take_peaks())
        stream.finish()
        assert np.array_equal(np.concatenate([*parts, stream.take_peaks()]), expected)
    assert len(LandmarkStream().take_peaks()) == 0  # not kept unless asked


@pytest.mark.parametrize("seed", range(4))
def test_a_short_prompt_under_gsm_and_noise_is_claimed_on_its_own_peaks(french_channel, seed, monkeypatch):
    """A 0.94 s prompt through GSM under pink noise at 12 dB keeps 8-13 aligned votes, never
    the ``MIN_VOTES`` a match needs by votes alone; its own peaks confirm it."""
    from audio_classifier.channels import fingerprint as channel

    x = over_gsm_and_pink_noise(french("vm-goodbye"), 12.0, seed)
    claims, votes = stream_claims(french_channel, x)
    assert votes < MIN_VOTES
    assert claims and {c.label for c in claims} == {"human"}
    assert claims[0].detail["agreement"] >= channel.WHOLE_AGREEMENT
    assert claims[0].end_s < 1.0 + 0.94 + 0.5  # within half a second of the prompt's end
    monkeypatch.setattr(channel, "WHOLE_AGREEMENT", 1.01)
    assert stream_claims(french_channel, x)[0] == []


@pytest.mark.parametrize("name", FRENCH_OTHERS)
def test_prompts_of_the_same_voice_are_not_claimed_on_shared_peaks(french_channel, name):
    """Other prompts of the enrolled voice, some with words in common: no claim. (They reach
    only a few votes here; coincidences at ``VERIFY_VOTES`` and more come from the call-shaped
    check set, docs/history.md.)"""
    for seed, snr_db in ((0, 12.0), (1, 30.0)):
        claims, _ = stream_claims(french_channel, over_gsm_and_pink_noise(french(name), snr_db, seed))
        assert claims == [], (name, claims)


def test_a_rival_counts_against_a_match_only_when_its_own_peaks_agree(french_channel, monkeypatch):
    """Short of the margin over a rival recording, a match whose peaks agree is still
    claimed when the rival's do not (a rival of coincidental votes); a rival whose peaks
    agree too holds it back."""
    from audio_classifier import fingerprint

    x = over_gsm_and_pink_noise(french("vm-goodbye"), 12.0, 0)
    real_best = fingerprint.Matcher.best
    goodbye = next(i for i, info in french_channel._state[1].items() if info.note == "vm-goodbye")
    vacant = next(i for i, info in french_channel._state[1].items() if info.note == "ss-noservice")

    def rival(at):
        def best(self, label_of=None):
            state = real_best(self, label_of)
            if state is None:
                return None
            where = at(state)
            return dataclasses.replace(state, recent_rival_votes=max(state.recent_votes, 1), rival=where)

        return best

    monkeypatch.setattr(fingerprint.Matcher, "best", rival(lambda s: (vacant, s.offset)))
    assert [c.label for c in stream_claims(french_channel, x)[0]][:1] == ["human"]
    monkeypatch.setattr(fingerprint.Matcher, "best", rival(lambda s: (goodbye, s.offset)))
    assert stream_claims(french_channel, x)[0] == []


def test_a_recording_whose_peaks_agree_is_pending_before_it_has_the_votes(french_channel, monkeypatch):
    """From ``PENDING_AGREED_VOTES`` aligned votes with agreeing peaks, the stream reports the
    recording as pending, so the decision waits for it, where votes alone wait for
    ``PENDING_VOTES``."""
    from audio_classifier.channels import fingerprint as channel

    x = over_gsm_and_pink_noise(french("vm-goodbye"), 12.0, 0)

    def first_pending() -> tuple[float, int] | None:
        stream = french_channel.open()
        for i in range(0, len(x), 400):
            stream.process(x[i : i + 400], i)
            if stream.pending() is not None:
                return (i + 400) / 8000, stream._matcher.best_votes
        return None

    at, votes = first_pending()
    assert channel.PENDING_AGREED_VOTES <= votes < channel.PENDING_VOTES
    monkeypatch.setattr(channel, "PENDING_MIN_PEAKS", 10**6)
    later = first_pending()
    assert later is None or later[0] > at


@pytest.mark.parametrize("seed", [0, 1])
def test_a_short_prompt_heard_whole_is_claimed_at_a_lower_agreement(
    french_channel, seed, tmp_path, monkeypatch
):
    """Through AMR-NB at 5.15 kbit/s a 0.94 s prompt keeps few of its peaks; once it has been
    heard whole (``WHOLE_RECORDING``), where a shared phrase cannot pass, ``WHOLE_AGREEMENT``
    claims it, and not before."""
    from audio_classifier.channels import fingerprint as channel
    from training.recode import amr_round_trip

    clean = np.concatenate([synth.silence(1.0), french("vm-goodbye"), synth.silence(1.0)])
    sf.write(tmp_path / "clean.wav", clean, 8000)
    amr_round_trip(tmp_path / "clean.wav", tmp_path / "coded.wav", 1)
    coded = read_audio(tmp_path / "coded.wav")
    x = under_pink_noise(coded, 20.0, seed)
    claims, votes = stream_claims(french_channel, x)
    assert votes < MIN_VOTES
    assert claims and claims[0].label == "human"
    assert claims[0].detail["heard"] >= channel.WHOLE_RECORDING
    assert claims[0].detail["agreement"] >= channel.WHOLE_AGREEMENT
    monkeypatch.setattr(channel, "WHOLE_AGREEMENT", 1.01)
    assert stream_claims(french_channel, x)[0] == []


def test_a_call_keeps_only_the_stretch_it_verifies_on(french_channel):
    """A long call holds about ``VERIFY_SPAN_S`` of its peaks and landmarks, not all of them."""
    from audio_classifier.channels import fingerprint as channel

    stream = french_channel.open()
    x = synth.speech_like(40.0, np.random.default_rng(3))
    for i in range(0, len(x), 2000):
        stream.process(x[i : i + 2000], i)
    frame_s = french_channel._state[2].frame_s
    peaks = np.concatenate(stream._heard) // 256
    anchors = np.concatenate([t for _, t in stream._heard_landmarks])
    assert (peaks.max() - peaks.min()) * frame_s < channel.VERIFY_SPAN_S + 1.0
    assert (anchors.max() - anchors.min()) * frame_s < channel.VERIFY_SPAN_S + 1.5
    assert peaks.max() * frame_s > 38.0


def _pushed(
    x: np.ndarray, block: int, prepare_blocks: int | None, once: bool = False
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The landmarks of each push of *block* samples (and of the finish); with
    *prepare_blocks*, ``prepare`` first sees every run of that many blocks (with *once*,
    only the first run: the pushes then go past what it prepared)."""
    stream = LandmarkStream(keep_peaks=True)
    out = []
    span = block * (prepare_blocks or 1)
    for start in range(0, len(x), span):
        if prepare_blocks and not (once and start):
            stream.prepare(x[start : start + span])
        for i in range(start, min(start + span, len(x)), block):
            out.append(stream.push(x[i : i + block]))
    return [*out, stream.finish()]


@pytest.mark.parametrize("near", [1, 5, None])
def test_prepared_landmarks_are_handed_out_push_by_push_as_they_would_be_made(monkeypatch, near):
    """``prepare`` pairs a run of blocks' anchors in one pass; each push then hands out
    exactly the landmarks it would have made, no sooner or later. The first search among a
    few followers (``NEAR_FOLLOWERS``) gives the targets the widest search gives."""
    from audio_classifier import fingerprint

    rng = np.random.default_rng(11)
    x = np.concatenate(
        [
            synth.speech_like(6.0, rng),
            synth.silence(1.0),
            synth.cadenced(synth.spec("CN", "ringback"), 3.0),
            (0.05 * rng.standard_normal(24000)).astype(np.float32),
        ]
    )
    expected = _pushed(x, 2000, None)
    if near is not None:
        monkeypatch.setattr(fingerprint, "NEAR_FOLLOWERS", near)
    for block, prepare_blocks, once in (
        (2000, None, False),
        (2000, 2, False),
        (2000, 7, True),
        (333, 40, False),
    ):
        got = _pushed(x, block, prepare_blocks, once)
        if block == 2000:  # push by push
            assert len(got) == len(expected)
            for a, b in zip(got, expected, strict=True):
                assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
        whole = [np.concatenate([p[i] for p in got]) for i in (0, 1)]
        assert np.array_equal(whole[0], np.concatenate([p[0] for p in expected]))
        assert np.array_equal(whole[1], np.concatenate([p[1] for p in expected]))
    assert sum(len(p[0]) for p in expected) > 1000
    assert sum(len(p[0]) > 0 for p in expected) > 0.5 * len(expected)  # landmarks in most pushes


@pytest.mark.parametrize("seed", range(4))
def test_targets_searched_among_a_few_followers_first_are_the_targets_of_the_widest_search(monkeypatch, seed):
    """``_targets`` on made-up constellations, sparse and crowded (gaps of 0-40 frames, 1-5
    peaks a frame): each first search width gives the widest search's targets, and the
    frame of each anchor's last one."""
    from audio_classifier import fingerprint

    rng = np.random.default_rng(seed)
    frames = np.cumsum(rng.choice([0, 1, 2, 28, 29, 30, 31, 32, 40], size=400))
    t = np.repeat(frames, rng.integers(1, 6, size=len(frames)))
    f = rng.integers(0, 208, size=len(t))
    rows = np.arange(len(t))
    config = fingerprint.FingerprintConfig()
    monkeypatch.setattr(fingerprint, "NEAR_FOLLOWERS", 10**6)
    widest = fingerprint._targets(t, f, rows, config)
    assert (widest[3] >= 0).sum() > 100 and (widest[3] < 0).sum() > 100  # full and short anchors
    for near in (1, 2, 5, 24):
        monkeypatch.setattr(fingerprint, "NEAR_FOLLOWERS", near)
        got = fingerprint._targets(t, f, rows, config)
        for a, b in zip(got, widest, strict=True):
            assert np.array_equal(a, b), near


def _mixed_signal(rng: np.random.Generator) -> np.ndarray:
    """Speech-like sound, silence, digital zeros, ringback, noise, crowded frames (a dozen
    tones at once) and sparse clicks, in random order and lengths."""
    parts = []
    for _ in range(int(rng.integers(2, 6))):
        kind, seconds = int(rng.integers(0, 7)), float(rng.uniform(0.05, 3.0))
        n = int(seconds * 8000)
        if kind == 0:
            parts.append(synth.speech_like(max(seconds, 0.5), rng))
        elif kind == 1:
            parts.append(synth.silence(seconds))
        elif kind == 2:
            parts.append(synth.cadenced(synth.spec("CN", "ringback"), seconds))
        elif kind == 3:
            parts.append(rng.uniform(0.001, 0.3) * rng.standard_normal(n))
        elif kind == 4:
            parts.append(np.zeros(int(rng.integers(0, 3000))))
        elif kind == 5:
            t = np.arange(n) / 8000
            parts.append(0.05 * sum(np.sin(2 * np.pi * rng.uniform(250, 3500) * t) for _ in range(12)))
        else:
            clicks = np.zeros(n)
            clicks[rng.integers(0, n, 20)] = 1.0
            parts.append(clicks)
    return np.concatenate(parts).astype(np.float32)


@pytest.mark.parametrize("seed", range(12))
def test_any_schedule_of_prepare_and_push_gives_the_landmarks_of_pushes_alone(seed):
    """Prepared runs of any length (empty, shorter or longer than the pushes that follow,
    prepared twice before a push), pushes of any size (a frame hop and a sample either
    side), then the finish: every push returns what it would have without ``prepare``,
    with the same peaks, and ``last_span`` points at it among the landmarks ``prepare``
    returned."""
    rng = np.random.default_rng(seed)
    x = _mixed_signal(rng)
    schedule, position = [], 0
    while position < len(x):
        if rng.random() < 0.35:
            schedule.append(
                ("prepare", int(rng.choice([0, 1, 511, 512, 2000, 8000, 16000, rng.integers(0, 40000)])))
            )
            if rng.random() < 0.2:
                schedule.append(("prepare", int(rng.integers(0, 40000))))
        size = int(rng.choice([0, 1, 127, 128, 129, 333, 2000, 2000, 6000, rng.integers(0, 20000)]))
        schedule.append(("push", size))
        position += size

    def run(prepared: bool) -> list:
        stream, made, out, at = LandmarkStream(keep_peaks=True), None, [], 0
        for step, size in schedule:
            if step == "prepare":
                if prepared:
                    made = stream.prepare(x[at : at + size]) or made
                continue
            hashes, times = stream.push(x[at : at + size])
            at += size
            if stream.last_span is not None:
                a, b = stream.last_span
                assert np.array_equal(made[0][a:b], hashes) and np.array_equal(made[1][a:b], times)
            out.append((hashes, times, stream.take_peaks()))
        return [*out, (*stream.finish(), stream.take_peaks())]

    expected, got = run(False), run(True)
    assert sum(len(p[0]) for p in expected) > 20  # the comparison has landmarks to compare
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        for mine, theirs in zip(a, b, strict=True):
            assert mine.dtype == theirs.dtype and np.array_equal(mine, theirs)


def test_prepare_returns_only_landmarks_its_pushes_hand_out():
    """What ``prepare`` returns is looked up in the library once: every landmark of it is
    handed out by the pushes over the prepared audio, in order, none twice and none
    left for a later run (those anchors wait for peaks after it and are paired later)."""
    x = synth.speech_like(8.0, np.random.default_rng(3))
    stream = LandmarkStream()
    made = stream.prepare(x)
    assert made is not None and len(made[0]) > 1000
    spans = []
    for i in range(0, len(x), 2000):
        stream.push(x[i : i + 2000])
        if stream.last_span is not None:
            spans.append(stream.last_span)
    assert spans[0][0] == 0 and spans[-1][1] == len(made[0])
    assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
    assert len(stream.finish()[0]) > 0  # the last anchors, paired once their zone is known


def test_an_index_refuses_hashes_this_fingerprint_version_cannot_make():
    """The index finds a hash's matches through a table of 2**21 run starts: a library
    holding a wider hash (damaged, or from another version) is refused by name, and one
    it can read finds every match."""
    from audio_classifier.errors import ModelError
    from audio_classifier.fingerprint import HASH_BITS, Index

    ids, times = np.zeros(2, dtype=np.int32), np.array([5, 9], dtype=np.int32)
    with pytest.raises(ModelError, match="21-bit"):
        Index(np.array([3, 2**HASH_BITS], dtype=np.uint32), ids, times)
    index = Index(np.array([2**HASH_BITS - 1, 0], dtype=np.uint32), ids, times)
    found = index.lookup_with_query(np.array([0, 7, 2**HASH_BITS - 1], dtype=np.uint32), np.array([1, 1, 2]))
    assert [a.tolist() for a in found] == [[0, 0], [8, 3], [0, 2]]


def test_an_exported_library_imports_back_into_itself_as_nothing_new(tmp_path):
    """``samples export`` writes each sample's source as its path; the shipped library's
    are synthesis recipes (``tts:...``), not files. Imported into a copy of the shipped
    library they are the samples it holds (nothing added, no failure); into a library
    without them, each says what it is."""
    import shutil

    from audio_classifier.samples import DEFAULT_LIBRARY, SampleLibrary

    copy = tmp_path / "mine.sqlite"
    shutil.copy(DEFAULT_LIBRARY, copy)
    exported = tmp_path / "exported.csv"
    with SampleLibrary(copy) as library:
        count = library.export(exported)
        assert count == len(library.list()) > 50
        again = list(library.import_manifest(exported))
        assert len(library.list()) == count
    assert all(error is None and not new and sample_id is not None for _, sample_id, new, error in again)
    with SampleLibrary(tmp_path / "fresh.sqlite", create=True) as fresh:
        results = list(fresh.import_manifest(exported))
        assert len(fresh.list()) == 0
    assert all(error is not None and "training.samples" in error for *_, error in results)
