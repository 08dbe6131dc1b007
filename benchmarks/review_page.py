"""The review page on a large queue: time to first interaction, measured in the browser.

    python -m benchmarks.review_page [--records 100000]

Loads an output of N records (generated: labels, confidences and evidence like a batch's)
into a review database, serves the page, and opens it in headless Chromium (Selenium, as
the browser tests). Reported, from the browser's own clock (``performance.now()``, from
navigation start): when the first page of the queue is shown and answers a key, and how long
the next page, a filtered page and a saved verdict take. The issue's target is 2 s for the
first interaction with 100,000 records. Loading the output into the database is reported
apart (once per output; a page served again reuses it).
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from audio_classifier.labels import LABELS


def make_output(path: Path, records: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    labels = list(LABELS)
    with open(path, "w") as handle:
        for i in range(records):
            label = rng.choice(labels)
            evidence = [
                {
                    "channel": "model",
                    "label": label,
                    "score": round(rng.random(), 3),
                    "start_s": 0.0,
                    "end_s": 1.5,
                },
                {
                    "channel": "tone",
                    "label": rng.choice(labels),
                    "score": round(rng.random(), 3),
                    "start_s": 0.0,
                    "end_s": 2.0,
                },
            ]
            record = {
                "path": f"calls/{i:07d}.wav",
                "carrier": rng.choice(["a", "b", "c"]),
                "label": label,
                "confidence": round(rng.random(), 4),
                "action": rng.choice(["keep", "retry_later", "remove"]),
                "decided_at_s": round(rng.uniform(1, 8), 3),
                "evidence": evidence,
                "error": None,
            }
            handle.write(json.dumps(record) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    args = parser.parse_args(argv)
    from selenium.webdriver.common.by import By

    from audio_classifier.review.app import ReviewSettings
    from audio_classifier.review.cli import review_app
    from audio_classifier.review.store import ReviewStore

    from .browser import chromium_driver, serving
    from .browser import wait_for as _wait

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.jsonl"
        make_output(out, args.records)
        store = ReviewStore(Path(tmp) / "review.sqlite")
        started = time.perf_counter()
        store.load(out)
        print(
            f"{args.records:,} records loaded into the review database in {time.perf_counter() - started:.1f} s"
        )
        driver = chromium_driver()
        try:
            with serving(review_app(ReviewSettings(store=store))) as url:
                for attempt in ("first (cold)", "again"):
                    driver.get(f"{url}/review/")
                    _wait(driver, "return document.body.dataset.ready === '1' && document.body.dataset.shown")
                    # a key the page answers: j moves to the next record, and it is shown
                    first_shown = driver.execute_script("return performance.now()")
                    driver.find_element(By.TAG_NAME, "body").send_keys("j")
                    _wait(
                        driver, "return state.index === 1 && document.body.dataset.shown == state.items[1].id"
                    )
                    answered = driver.execute_script("return performance.now()")
                    print(
                        f"{attempt}: queue shown {first_shown / 1000:.2f} s after navigation; first key "
                        f"answered at {answered / 1000:.2f} s"
                    )
                timings = driver.execute_async_script(
                    """const done = arguments[0]; const t0 = performance.now();
                    fetch('api/records?offset=50000&limit=50').then((r) => r.json()).then(() => {
                      const t1 = performance.now();
                      return fetch('api/records?limit=50&label=vacant&max_confidence=0.3').then((r) => r.json())
                        .then(() => { const t2 = performance.now();
                          return fetch('api/records?limit=50&column=carrier&value=b').then((r) => r.json())
                            .then(() => done([t1 - t0, t2 - t1, performance.now() - t2])); }); });"""
                )
                print(
                    f"page at offset 50,000: {timings[0]:.0f} ms; filtered by label and confidence: "
                    f"{timings[1]:.0f} ms; by a manifest column: {timings[2]:.0f} ms"
                )
        finally:
            driver.quit()


if __name__ == "__main__":
    main()
