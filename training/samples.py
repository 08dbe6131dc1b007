"""Build the shipped sample library from the recipe's reference prompts.

    python -m training.samples [--out models/samples.sqlite]

Every wording of every announcement label in ``prompts.json``, spoken once in a fixed
reference voice (zh and en separately), is enrolled with its label, language and text.
It stands in for a carrier's own recordings: operators add theirs with ``samples add``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from audio_classifier.samples import SampleLibrary

from . import tts
from .corpus import load_prompts

REFERENCE_VOICES = {
    "zh": tts.Voice("zh", tts.ZH_VOICE, "", 150, 50),
    "en": tts.Voice("en", "en-us", "", 160, 50),
}
CARRIER = "reference prompts (espeak-ng)"


def build(out: Path) -> int:
    tts.check_espeak()
    if out.exists():
        out.unlink()
    count = 0
    with SampleLibrary(out, create=True) as library:
        for label, wordings in load_prompts()["announcements"].items():
            for lang, texts in wordings.items():
                for text in texts:
                    library.add(
                        tts.speak(text, REFERENCE_VOICES[lang]),
                        label=label,
                        lang=lang,
                        carrier=CARRIER,
                        note=text,
                        source=f"tts:{REFERENCE_VOICES[lang].describe()}",
                    )
                    count += 1
    return count


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("models/samples.sqlite"))
    args = parser.parse_args(argv)
    count = build(args.out)
    print(f"enrolled {count} reference prompts in {args.out} ({args.out.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
