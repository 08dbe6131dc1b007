"""Fingerprint channel: identification, time to match, false matches, cost and index size.

    python -m benchmarks.fingerprint [--quick]

- Enrolled: every wording of prompts.json in the recipe's reference voices (the shipped
  library's recipe), in a fresh library.
- Identification: each enrolled prompt under every degradation of tests/test_fingerprint.py
  (G.711 mu/A-law, GSM, 10 dB SNR, ±6 dB gain, start offsets, mid-prompt start, ringback
  first, repeated); time to match = first fingerprint evidence minus the prompt's start.
- False matches: non-enrolled clips: the same wordings spoken by other speakers (held-out
  voice variants), music, tone sequences and noise.
- Query cost against 100, 1,000 and 10,000 enrolled recordings: larger libraries are padded
  with landmark sets drawn from the real prompts' hash distribution (so bucket occupancy
  is realistic), then 60 s of query audio is streamed through the channel.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from audio_classifier import synth
from audio_classifier.channels.fingerprint import FingerprintChannel, FingerprintStream
from audio_classifier.fingerprint import Index
from audio_classifier.samples import SampleLibrary
from tests.test_fingerprint import KINDS, degrade
from training import samples as recipe
from training import tts
from training.music import music


def run_stream(stream: FingerprintStream, audio: np.ndarray, block: int = 800):
    evidence = []
    for i in range(0, len(audio), block):
        evidence += stream.process(audio[i : i + block], i)
    return evidence + stream.finish()


def enrolled_prompts() -> list[tuple[str, str, np.ndarray]]:
    """The shipped library's reference prompts (one recording session per prompt)."""
    return [(label, text, tts.speak(text, voice)) for label, _, text, voice in recipe.reference_prompts()]


OTHER_WORDINGS = {
    "zh": [
        "您好，欢迎致电客户服务中心",
        "您拨打的号码正在呼叫转移中，请稍候",
        "本次通话将被录音",
        "请输入您要查询的号码",
        "感谢您的来电，再见",
        "您的来电已进入排队，请耐心等待",
        "对方已开启免打扰模式",
        "这里是语音导航，请按一号键",
    ],
    "en": [
        "Thank you for calling, please hold",
        "Your call is important to us",
        "This call may be recorded",
        "Please enter your account number followed by the pound key",
        "Goodbye and have a nice day",
        "All our agents are busy, please stay on the line",
        "Press one for sales and two for support",
        "Welcome to the automated attendant",
    ],
}
"""Prompts nobody enrolled (other carriers' and IVR wordings)."""


def non_enrolled(rng: np.random.Generator, quick: bool) -> list[tuple[str, str | None, np.ndarray]]:
    """(category, label it must not be confused with or None, audio) of non-enrolled clips."""
    clips = []
    repeats = 2 if quick else 12
    for lang, texts in OTHER_WORDINGS.items():
        for text in texts:
            for k in range(repeats):
                variant = ("", *tts.HELDOUT_VARIANTS)
                name = tts.ZH_VOICE if lang == "zh" else "en-us"
                voice = tts.Voice(
                    lang,
                    name,
                    variant[k % len(variant)],
                    int(rng.integers(130, 185)),
                    int(rng.integers(30, 70)),
                )
                clips.append(("other prompts", None, synth.g711_channel(tts.speak(text, voice), "alaw")))
    variants = tts.HELDOUT_VARIANTS if not quick else tts.HELDOUT_VARIANTS[:2]
    for label, lang, text, _ in recipe.reference_prompts():
        for variant in variants:
            name = tts.ZH_VOICE if lang == "zh" else "en-us"
            voice = tts.Voice(lang, name, variant, int(rng.integers(130, 185)), int(rng.integers(30, 70)))
            clips.append(
                (
                    "enrolled wordings, other TTS voices",
                    label,
                    synth.g711_channel(tts.speak(text, voice), "alaw"),
                )
            )
    for _ in range(20 if quick else 150):
        clips.append(("music", None, music(rng.uniform(4, 10), rng)))
    specs = [s for s in synth.TONE_SPECS if s.cadence is not None]
    for i in range(10 if quick else 100):
        parts = [synth.cadenced(specs[rng.integers(len(specs))], rng.uniform(2, 5)) for _ in range(2)]
        parts.insert(1, synth.sit([None, "vc", "nc", "ro"][i % 4]))
        clips.append(("tones", None, np.concatenate(parts)))
    for _ in range(10 if quick else 60):
        clips.append(("speech-like", None, synth.speech_like(rng.uniform(3, 6), rng)))
    for _ in range(10 if quick else 100):
        noise = rng.uniform(0.01, 0.2) * rng.standard_normal(int(rng.uniform(3, 8) * 8000))
        clips.append(("noise", None, noise.astype(np.float32)))
    return clips


def padded_channel(channel: FingerprintChannel, size: int, rng: np.random.Generator) -> FingerprintChannel:
    """The channel's index padded with synthetic recordings up to *size* recordings.

    Their landmarks draw anchor bin, frequency step and time step independently from the
    real prompts' distributions: realistic bucket occupancy without 10,000 recordings.
    """
    index, infos, config, peaks = channel._state
    real = len(infos)
    if size > real:
        per_recording = max(1, len(index) // max(real, 1))
        extra = (size - real) * per_recording
        f1 = (index.hashes >> 13) & 0xFF
        df = (index.hashes >> 6) & 0x7F
        dt = index.hashes & 0x3F
        fake = (rng.choice(f1, extra) << 13) | (rng.choice(df, extra) << 6) | rng.choice(dt, extra)
        hashes = np.concatenate([index.hashes, fake.astype(np.uint32)])
        ids = np.concatenate(
            [index.sample_ids, np.repeat(np.arange(10_000_000, 10_000_000 + size - real), per_recording)]
        )
        times = np.concatenate([index.times, rng.integers(0, 400, extra).astype(np.int32)])
        index = Index(hashes, ids, times)
    clone = object.__new__(FingerprintChannel)
    clone.path, clone._lock, clone._state = channel.path, None, (index, infos, config, peaks)
    return clone


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer clips (a smoke run)")
    parser.add_argument("--seed", type=int, default=11, help="degradations, voices and non-enrolled clips")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    prompts = enrolled_prompts()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.sqlite"
        ids = []
        with SampleLibrary(path, create=True) as library:
            for label, text, audio in prompts:
                ids.append(library.add(audio, label=label, note=text)[0])
        enrolled_minutes = sum(len(a) for _, _, a in prompts) / 8000 / 60
        size_bytes = path.stat().st_size
        channel = FingerprintChannel(path)

        # identification and time to match
        hits, delays, per_kind = 0, [], {k: [0, 0] for k in KINDS}
        kinds = KINDS if not args.quick else KINDS[:4]
        for (_, _, audio), sample_id in zip(prompts, ids, strict=True):
            for kind in kinds:
                query, start = degrade(kind, audio, rng)
                evidence = run_stream(channel.open(), query)
                ok = bool(evidence) and evidence[0].detail["sample_id"] == sample_id
                per_kind[kind][0] += ok
                per_kind[kind][1] += 1
                hits += ok
                if ok:
                    delays.append(evidence[0].end_s - start if kind != "mid_prompt" else evidence[0].end_s)
        total = sum(n for _, n in per_kind.values())
        print(f"enrolled: {len(prompts)} prompts, {enrolled_minutes:.1f} min of audio")
        print(f"identification: {hits}/{total} = {100 * hits / total:.2f} % of degraded enrolled prompts")
        for kind, (ok, n) in per_kind.items():
            if n:
                print(f"  {kind:15s} {ok}/{n}")
        d = np.array(delays)
        print(
            f"time to match (s of prompt audio): median {np.median(d):.2f}, p90 {np.percentile(d, 90):.2f}, "
            f"max {d.max():.2f}"
        )

        # false matches, by category; a match with the same label as the wording is harmless
        others = non_enrolled(rng, args.quick)
        by_category: dict[str, list[int]] = {}
        for category, label, audio in others:
            evidence = run_stream(channel.open(), audio)
            counts = by_category.setdefault(category, [0, 0, 0])
            counts[0] += 1
            counts[1] += bool(evidence)
            counts[2] += bool(evidence) and (label is None or evidence[0].label != label)
        print("false matches on non-enrolled clips (any match / match with a wrong label):")
        headline = [0, 0, 0]
        for category, (n, any_match, wrong) in by_category.items():
            print(
                f"  {category:38s} {any_match:4d}/{n:<5d} ({100 * any_match / n:.2f} %)   wrong label {wrong} "
                f"({100 * wrong / n:.2f} %)"
            )
            if category != "enrolled wordings, other TTS voices":
                headline = [a + b for a, b in zip(headline, (n, any_match, wrong), strict=True)]
        print(
            f"  other prompts, speech, music, tones, noise: {headline[1]}/{headline[0]} = "
            f"{100 * headline[1] / headline[0]:.2f} % of clips"
        )

        # query cost against library size
        query = np.concatenate([p[2] for p in prompts[:6]] + [others[-1][2]] + [synth.silence(1.0)])
        query = np.resize(query, 60 * 8000)
        for size in (100, 1000, 10000):
            big = padded_channel(channel, size, rng)
            cpu = time.process_time()
            run_stream(big.open(), query)
            cpu = time.process_time() - cpu
            print(
                f"query cost with {size:6d} recordings ({len(big._state[0]):9d} landmarks): "
                f"{60 / cpu:7.0f}x real time per core"
            )
        print(f"index size: {size_bytes / 1024 / enrolled_minutes:.0f} KiB per enrolled minute (SQLite file)")


if __name__ == "__main__":
    main()
