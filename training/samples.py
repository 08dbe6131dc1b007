"""Build the shipped sample library from the recipe's reference prompts.

    python -m training.samples [--out models/samples.sqlite]

Every wording of every announcement label in ``prompts.json``, spoken once in a fixed
reference voice (zh and en separately), is enrolled with its label, language and text.
It stands in for a carrier's own recordings: operators add theirs with ``samples add``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from audio_classifier.samples import SYNTHETIC_SOURCE, SampleLibrary

from . import tts
from .corpus import load_prompts

REFERENCE_VOICES = {
    "zh": tts.Voice("zh", tts.ZH_VOICE, "", 150, 50),
    "en": tts.Voice("en", "en-us", "", 160, 50),
}
CARRIER = "reference prompts (espeak-ng)"


def reference_voice(lang: str, number: int) -> tts.Voice:
    """The reference speaker, with the small rate and pitch differences of a separate
    recording session per prompt (so prompts that open with the same words do not share
    bit-identical audio, as separately recorded prompts do not)."""
    base = REFERENCE_VOICES[lang]
    return tts.Voice(
        lang, base.name, base.variant, base.speed + (number * 7) % 21 - 10, base.pitch + (number * 5) % 13 - 6
    )


def reference_prompts() -> list[tuple[str, str, str, tts.Voice]]:
    """(label, lang, text, voice) of every reference prompt."""
    out = []
    for label, wordings in load_prompts()["announcements"].items():
        for lang, texts in wordings.items():
            for text in texts:
                out.append((label, lang, text, reference_voice(lang, len(out))))
    return out


def build(out: Path) -> int:
    tts.check_espeak()
    if out.exists():
        out.unlink()
    prompts = reference_prompts()
    with SampleLibrary(out, create=True) as library:
        for label, lang, text, voice in prompts:
            library.add(
                tts.speak(text, voice),
                label=label,
                lang=lang,
                carrier=CARRIER,
                note=text,
                source=f"{SYNTHETIC_SOURCE}{voice.describe()}",
            )
    return len(prompts)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("models/samples.sqlite"))
    args = parser.parse_args(argv)
    count = build(args.out)
    print(f"enrolled {count} reference prompts in {args.out} ({args.out.stat().st_size // 1024} KiB)")


if __name__ == "__main__":
    main()
