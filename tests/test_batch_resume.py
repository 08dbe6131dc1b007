"""Batch inputs and outputs a user gets wrong or a crash leaves behind: resume by input
identity, failed inputs retried, torn CSV records, manifests in other encodings, outputs
that cannot be written or are not this program's. Each ends in a right result or a clear
error (exit 2) that loses nothing."""

import csv
import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from audio_classifier import synth
from audio_classifier.batch import expand_paths
from audio_classifier.cli import main

OFF = ("--no-model", "--no-samples", "--no-asr")  # tones decide these calls: fast


def run_cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture()
def calls(tmp_path):
    folder = tmp_path / "calls"
    folder.mkdir()
    sf.write(folder / "busy.wav", synth.cadenced(synth.spec("CN", "busy"), 3.0), 8000)
    sf.write(folder / "uk.wav", synth.cadenced(synth.spec("UK", "busy"), 3.0), 8000)
    return folder


def test_rows_sharing_a_path_are_each_an_input_after_an_interruption(tmp_path, calls):
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "path,number\ncalls/busy.wav,13800000001\ncalls/busy.wav,13800000002\ncalls/uk.wav,13800000003\n"
    )
    out = tmp_path / "out.jsonl"
    assert run_cli("classify", "--manifest", manifest, "-o", out, *OFF).exit_code == 0
    lines = out.read_text().splitlines()
    out.write_text(lines[0] + "\n")  # interrupted after the first record
    again = run_cli("classify", "--manifest", manifest, "-o", out, *OFF)
    assert again.exit_code == 0 and "resuming: 1 of 3" in again.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["number"] for r in records) == ["13800000001", "13800000002", "13800000003"]
    assert run_cli("classify", "--manifest", manifest, "-o", out, *OFF).exit_code == 0
    assert len(out.read_text().splitlines()) == 3  # nothing left to do, nothing duplicated


def test_failed_inputs_are_retried_and_the_exit_status_is_the_final_state(tmp_path, calls):
    broken = calls / "late.wav"
    broken.write_bytes(b"RIFF not yet copied")
    out = tmp_path / "out.jsonl"
    first = run_cli("classify", calls, "-o", out, *OFF)
    assert first.exit_code == 1 and "1 of 3 inputs failed" in first.stderr
    sf.write(broken, synth.cadenced(synth.spec("CN", "busy"), 3.0), 8000)  # the copy finished
    second = run_cli("classify", calls, "-o", out, *OFF)
    assert second.exit_code == 0, second.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 3 and all(r["error"] is None for r in records)
    assert {r["label"] for r in records} == {"busy_tone"}


def test_a_csv_record_torn_inside_a_quoted_field_is_done_again(tmp_path, calls):
    manifest = tmp_path / "m.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "comment"])
        writer.writerow(["calls/busy.wav", "first line\nsecond line"])
        writer.writerow(["calls/uk.wav", "agent said:\n'number is busy'\nend"])
    out = tmp_path / "out.csv"
    assert run_cli("classify", "--manifest", manifest, "-o", out, *OFF).exit_code == 0
    text = out.read_text()
    cut = text.index("agent said:\n") + len("agent said:\n")  # a crash right after a newline
    out.write_text(text[:cut])
    again = run_cli("classify", "--manifest", manifest, "-o", out, *OFF)
    assert again.exit_code == 0 and "resuming: 1 of 2" in again.stderr
    rows = list(csv.DictReader(open(out, newline="")))
    assert [r["comment"] for r in rows] == ["first line\nsecond line", "agent said:\n'number is busy'\nend"]
    assert [r["label_en"] for r in rows] == ["Busy tone", "Busy tone"]  # CSV carries label_en


def test_a_csv_output_with_other_columns_is_rewritten_with_this_runs(tmp_path, calls):
    out = tmp_path / "out.csv"
    out.write_text(f"path,label,error\n{calls / 'busy.wav'},busy_tone,\n")  # an older version's columns
    result = run_cli("classify", calls, "-o", out, *OFF)
    assert result.exit_code == 0 and "resuming: 1 of 2" in result.stderr
    rows = list(csv.DictReader(open(out, newline="")))
    assert len(rows) == 2 and {"label_en", "confidence", "evidence"} <= set(rows[0])
    assert [r["path"] for r in rows] == [str(calls / "busy.wav"), str(calls / "uk.wav")]


def test_manifest_encodings(tmp_path, calls):
    text = "path,note\ncalls/busy.wav,忙音\n"
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes(text.encode("utf-16"))  # with its byte-order mark, as spreadsheets save it
    result = run_cli("classify", "--manifest", utf16, *OFF)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["note"] == "忙音"
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes(text.encode("gbk"))
    result = run_cli("classify", "--manifest", gbk, *OFF)
    assert result.exit_code == 2 and "is not UTF-8 (line 2" in result.output and "iconv" in result.output
    # the suggested command works as printed, from where the user is, and writes a manifest
    # beside the first, whose relative paths resolve as they did
    command = re.search(r"e\.g\. '(iconv .*)'", " ".join(result.output.split())).group(1)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    subprocess.run(command, shell=True, check=True, cwd=elsewhere)
    converted = tmp_path / "gbk.utf8.csv"
    result = run_cli("classify", "--manifest", converted, *OFF)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["note"] == "忙音"


def test_a_huge_manifest_field_is_a_usage_error(tmp_path, calls):
    manifest = tmp_path / "m.csv"
    manifest.write_text('path,note\ncalls/busy.wav,"' + "x" * 200_000 + '"\n')
    result = run_cli("classify", "--manifest", manifest, *OFF)
    assert result.exit_code == 2 and "data row 1" in result.output and "field larger" in result.output


def test_outputs_that_cannot_be_used(tmp_path, calls):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    result = run_cli("classify", calls, "-o", blocker / "out.jsonl", *OFF)
    assert result.exit_code == 2 and "cannot write the output file" in result.output

    foreign = tmp_path / "foreign.jsonl"
    foreign.write_bytes(b"\xff\xfe binary \x00\x01\n")
    result = run_cli("classify", calls, "-o", foreign, *OFF)
    assert result.exit_code == 2 and "is not UTF-8" in result.output
    assert foreign.read_bytes() == b"\xff\xfe binary \x00\x01\n"  # untouched

    notes = tmp_path / "notes.jsonl"
    notes.write_text("my notes\n{not json}\nmore\n")
    result = run_cli("classify", calls, "-o", notes, *OFF)
    assert result.exit_code == 2 and "line 1" in result.output and "not a record" in result.output
    assert notes.read_text() == "my notes\n{not json}\nmore\n"

    manifest = tmp_path / "m.csv"
    manifest.write_text("path\ncalls/busy.wav\n")
    before = manifest.read_text()
    result = run_cli("classify", "--manifest", manifest, "-o", manifest, *OFF)
    assert result.exit_code == 2 and "is the manifest itself" in result.output
    assert manifest.read_text() == before


def test_evaluate_refuses_a_folder_made_with_other_settings(tmp_path, calls):
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\ncalls/busy.wav,busy_tone\ncalls/uk.wav,busy_tone\n")
    out = tmp_path / "eval"
    assert run_cli("evaluate", manifest, "--out-dir", out, *OFF).exit_code == 0
    assert run_cli("evaluate", manifest, "--out-dir", out, *OFF).exit_code == 0  # same settings: resumed
    other = run_cli("evaluate", manifest, "--out-dir", out, *OFF, "--threshold", "0.8")
    assert other.exit_code == 2 and "other settings" in other.output and "decision_threshold" in other.output
    assert "--restart" in other.output
    restarted = run_cli("evaluate", manifest, "--out-dir", out, *OFF, "--threshold", "0.8", "--restart")
    assert restarted.exit_code == 0, restarted.output
    stamp = json.loads((out / "predictions.settings.json").read_text())
    assert stamp["config"]["decision"]["decision_threshold"] == 0.8 and stamp["channels"] == {"tone": ""}


def test_evaluate_exits_1_when_inputs_fail_and_survives_when_all_do(tmp_path, calls):
    (calls / "bad.wav").write_text("not audio")
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\ncalls/busy.wav,busy_tone\ncalls/bad.wav,busy_tone\n")
    result = run_cli("evaluate", manifest, "--out-dir", tmp_path / "one", *OFF)
    assert result.exit_code == 1 and "1 of 2 inputs failed" in result.stderr
    assert json.loads((tmp_path / "one" / "metrics.json").read_text())["scored"] == 1
    manifest.write_text("path,label\ncalls/bad.wav,busy_tone\n")
    result = run_cli("evaluate", manifest, "--out-dir", tmp_path / "none", *OFF)
    assert result.exit_code == 1 and "1 of 1 inputs failed" in result.stderr  # no plot crash
    assert not (tmp_path / "none" / "confusion.png").exists()


def test_directory_mode_says_what_it_could_not_search(tmp_path, calls):
    (calls / "gone.wav").symlink_to(tmp_path / "deleted.wav")  # a dangling link
    os.mkfifo(calls / "pipe.wav")  # would block a reader forever
    (calls / "loop").symlink_to(calls)  # a folder linking back to its parent
    result = run_cli("classify", calls, *OFF)
    assert result.exit_code == 1  # the two bad inputs are failed inputs, not silence
    records = {os.path.basename(r["path"]): r for r in map(json.loads, result.stdout.splitlines())}
    assert set(records) == {"busy.wav", "uk.wav", "gone.wav", "pipe.wav"}
    assert "dangling symbolic link" in records["gone.wav"]["error"]
    assert "not a regular file" in records["pipe.wav"]["error"]
    assert "note: not searched" in result.stderr and "loop" in result.stderr


def test_an_unreadable_folder_is_named(calls, monkeypatch):
    """Root lists every folder, so the kernel's refusal is played by os.scandir."""
    locked = calls / "locked"
    locked.mkdir()
    sf.write(locked / "x.wav", synth.cadenced(synth.spec("CN", "busy"), 3.0), 8000)
    real_scandir = os.scandir

    def scandir(path="."):
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    skipped = []
    items = expand_paths([str(calls)], on_skip=skipped.append)
    assert [item.path.name for item in items] == ["busy.wav", "uk.wav"]
    assert skipped == [f"{locked}: Permission denied"]


def test_file_faults_are_noted_once_or_refused(tmp_path):
    from audio_classifier import Classifier, ClassifierConfig

    classifier = Classifier(ClassifierConfig(model_path=None, samples_path=None, asr_model=None))
    busy = synth.cadenced(synth.spec("CN", "busy"), 4.0)
    sf.write(tmp_path / "whole.wav", busy, 8000, subtype="PCM_16")
    data = (tmp_path / "whole.wav").read_bytes()
    (tmp_path / "cut.wav").write_bytes(data[: len(data) // 3])  # the header still says 4 s
    cut = classifier.classify_file(tmp_path / "cut.wav")
    assert list(cut.notes) == [
        "the file ends before its header says: 1.3 s of 4.0 s (cut short, or still being written)"
    ]
    assert classifier.classify_file(tmp_path / "whole.wav").notes == ()

    sf.write(tmp_path / "long.wav", synth.cadenced(synth.spec("CN", "ringback"), 70.0), 8000)
    long = classifier.classify_file(tmp_path / "long.wav")
    assert long.truncated and list(long.notes) == ["analysed only the first 60 s of 70.0 s"]

    sf.write(tmp_path / "huge.wav", np.full(8000, 1e30, dtype=np.float32), 8000, subtype="FLOAT")
    result = run_cli("classify", tmp_path / "huge.wav", *OFF)
    assert result.exit_code == 1 and "InvalidSamplesError: float samples reach 1e+30" in result.stdout


def test_a_device_as_output_is_written_not_resumed(calls):
    result = run_cli("classify", calls, "-o", "/dev/full", *OFF)  # endless to read, full to write
    assert result.exit_code == 1 and "cannot write to /dev/full: No space left on device" in result.output
    assert run_cli("classify", calls, "-o", "/dev/null", *OFF).exit_code == 0


def test_manifest_columns_named_like_record_fields_keep_resume_exact(tmp_path, calls):
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,hold,peaks\ncalls/busy.wav,yes,3\n")
    out = tmp_path / "out.jsonl"
    for _ in range(3):
        assert run_cli("classify", "--manifest", manifest, "-o", out, *OFF).exit_code == 0
    (record,) = [json.loads(line) for line in out.read_text().splitlines()]  # one input, one record
    assert record["manifest_hold"] == "yes" and record["manifest_peaks"] == "3"


def test_a_problem_with_the_input_is_said_without_the_usage_text(tmp_path):
    """A manifest with no rows is not a misuse of the command's options: ``Error: ...``,
    exit status 2, and no usage text to read past (a wrong option still gets it)."""
    empty = tmp_path / "empty.csv"
    empty.write_text("path,label\n")
    result = run_cli("evaluate", empty, "--out-dir", tmp_path / "out", *OFF)
    assert result.exit_code == 2 and "Error: the manifest has no rows" in result.output
    assert "Usage:" not in result.output
    misuse = run_cli("classify", *OFF)
    assert misuse.exit_code == 2 and "Usage:" in misuse.output and "--manifest" in misuse.output
