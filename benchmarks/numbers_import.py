"""Importing a large lead file into the number registry, on SQLite and on PostgreSQL.

    python -m benchmarks.numbers_import [--rows 1000000] [--engines sqlite postgresql]

The file: Chinese mobile numbers, of which 10 % malformed or impossible, 5 % repeats of
earlier rows, and 2 % numbers the registry already blocks (a vacant outcome at confidence
0.99 recorded first). Each engine's import runs in a process of its own, so its peak RSS is
its own; the same file is then imported again, which must add no number and no event.
Reported per engine: seconds, rows per second, peak RSS, the accepted/rejected counts, and
the re-import's additions. Targets (#33): 60 s on SQLite and 120 s on PostgreSQL for 10^6
rows, peak RSS <= 500 MB.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = {"sqlite": 60.0, "postgresql": 120.0}
TARGET_RSS_MB = 500.0
SHARES = {"invalid": 0.10, "duplicate": 0.05, "blocked": 0.02}


def make_leads(folder: Path, rows: int, seed: int = 0) -> tuple[Path, Path]:
    """(the lead file, a classify output that blocks its 2 % of blocked numbers)."""
    rng = random.Random(seed)
    prefixes = ["130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "158", "159",
                "166", "177", "180", "181", "186", "187", "188", "189", "198", "199"]  # fmt: skip
    leads = folder / "leads.csv"
    blocked = []
    earlier: list[str] = []
    with open(leads, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["number", "name", "campaign"])
        for i in range(rows):
            r = rng.random()
            if r < SHARES["invalid"]:
                number = rng.choice(
                    [str(rng.randint(100, 99999)), "1" + "0" * 10, "abc" + str(i), "+999" + str(i)]
                )
            elif r < SHARES["invalid"] + SHARES["duplicate"] and earlier:
                number = rng.choice(earlier)
            else:
                number = rng.choice(prefixes) + f"{rng.randrange(10**8):08d}"
                if r < SHARES["invalid"] + SHARES["duplicate"] + SHARES["blocked"]:
                    blocked.append(number)
                if len(earlier) < 100_000:
                    earlier.append(number)
            writer.writerow([number, f"lead {i}", "autumn"])
    outcomes = folder / "outcomes.jsonl"
    with open(outcomes, "w") as handle:
        for k, number in enumerate(blocked):
            record = {
                "path": f"call{k}.wav",
                "number": number,
                "label": "vacant",
                "confidence": 0.99,
                "error": None,
            }
            handle.write(json.dumps(record) + "\n")
    return leads, outcomes


def run_one(database: str, leads: Path, outcomes: Path) -> dict:
    """In this process: block the 2 %, import, import again; figures as a dict."""
    from audio_classifier.numbers import Registry

    with Registry(database) as registry:
        registry.record(outcomes)
        started = time.perf_counter()
        first = registry.import_leads(leads, source="vendorA", list_name="autumn")
        seconds = time.perf_counter() - started
        events_before = registry.record(outcomes).added
        again = registry.import_leads(leads, source="vendorA", list_name="autumn")
    return {
        "seconds": seconds,
        "rows": first.rows,
        "accepted": first.accepted,
        "rejected": first.rejected,
        "reimport_new_numbers": again.new_numbers,
        "reimport_new_entries": again.new_entries,
        "rerecord_new_events": events_before,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument(
        "--engines", nargs="+", default=["sqlite", "postgresql"], choices=["sqlite", "postgresql"]
    )
    parser.add_argument("--one", nargs=3, metavar=("DATABASE", "LEADS", "OUTCOMES"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one[0], Path(args.one[1]), Path(args.one[2]))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        leads, outcomes = make_leads(folder, args.rows)
        print(
            f"lead file: {args.rows:,} rows ({leads.stat().st_size / 2**20:.0f} MB), made in {time.perf_counter() - started:.0f} s"
        )
        for engine in args.engines:
            if engine == "sqlite":
                figures = _child(str(folder / "numbers.sqlite"), leads, outcomes)
            else:
                from .postgres import create_database, postgres_server

                with postgres_server() as admin:
                    figures = _child(create_database(admin, "bench"), leads, outcomes)
            ok = figures["seconds"] <= TARGET_S[engine] and figures["peak_rss_mb"] <= TARGET_RSS_MB
            print(
                f"{engine:10s}: {figures['seconds']:6.1f} s ({figures['rows'] / figures['seconds']:,.0f} rows/s; "
                f"target {TARGET_S[engine]:.0f} s, ratio {figures['seconds'] / TARGET_S[engine]:.2f}), peak RSS "
                f"{figures['peak_rss_mb']:.0f} MB (target {TARGET_RSS_MB:.0f}); accepted {figures['accepted']:,}, "
                f"rejected {figures['rejected']}; again: {figures['reimport_new_numbers']} new numbers, "
                f"{figures['reimport_new_entries']} new entries, {figures['rerecord_new_events']} new events"
                f"{'' if ok else '  <- over target'}"
            )


def _child(database: str, leads: Path, outcomes: Path) -> dict:
    command = [
        sys.executable,
        "-m",
        "benchmarks.numbers_import",
        "--one",
        database,
        str(leads),
        str(outcomes),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the import failed:\n{done.stderr}")
    return json.loads(done.stdout.splitlines()[-1])


if __name__ == "__main__":
    main()
