"""The batch CLI, run as a user runs it (a real subprocess for jobs and interruption)."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from audio_classifier import synth
from audio_classifier.cli import main
from audio_classifier.labels import ANNOUNCEMENT_LABELS

from .conftest import FIXTURES


@pytest.fixture()
def corpus(tmp_path):
    folder = tmp_path / "calls"
    (folder / "sub").mkdir(parents=True)
    sf.write(folder / "busy.wav", synth.cadenced(synth.spec("CN", "busy"), 3.0), 8000)
    sf.write(
        folder / "sub" / "sit.flac",
        np.concatenate([synth.silence(0.3), synth.sit("nc"), synth.silence(1)]),
        8000,
    )
    (folder / "broken.wav").write_text("not audio")
    (folder / "readme.txt").write_text("ignored: not an audio extension")
    return folder


def run_cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_directory_to_jsonl_with_a_broken_file(corpus):
    result = run_cli("classify", corpus)
    assert result.exit_code == 1  # one input failed, the others were classified
    records = [json.loads(line) for line in result.stdout.splitlines()]
    by_name = {os.path.basename(r["path"]): r for r in records}
    assert set(by_name) == {"busy.wav", "sit.flac", "broken.wav"}
    assert by_name["busy.wav"]["label"] == "busy_tone" and by_name["busy.wav"]["error"] is None
    assert by_name["sit.flac"]["label"] == "network_busy"
    assert by_name["broken.wav"]["label"] is None and "UnreadableAudioError" in by_name["broken.wav"]["error"]
    for field in ("confidence", "number_state", "action", "decided_at_s", "final", "evidence"):
        assert field in by_name["busy.wav"]


def test_manifest_columns_and_hints_carried_to_csv(tmp_path, corpus):
    manifest = tmp_path / "m.csv"
    manifest.write_text(
        "path,number,source,sip_status,label\n"
        f"{corpus / 'busy.wav'},13800000000,trunkA,486,busy_tone\n"
        "calls/sub/sit.flac,13900000000,trunkB,,network_busy\n"
    )
    out = tmp_path / "out.csv"
    result = run_cli("classify", "--manifest", manifest, "-o", out)
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(open(out, newline="")))
    assert [r["number"] for r in rows] == ["13800000000", "13900000000"]
    assert rows[0]["manifest_label"] == "busy_tone" and rows[0]["label"] == "busy_tone"
    assert any(e["channel"] == "signalling" for e in json.loads(rows[0]["evidence"]))
    assert rows[1]["label"] == "network_busy" and rows[1]["path"] == "calls/sub/sit.flac"


def test_usage_errors_exit_2(tmp_path, corpus):
    assert run_cli("classify").exit_code == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("file,label\na.wav,busy\n")
    result = run_cli("classify", "--manifest", bad)
    assert result.exit_code == 2 and "no 'path' column" in result.output
    assert run_cli("classify", "--jobs", "0", corpus).exit_code == 2
    assert run_cli("classify", "--threshold", "3", corpus).exit_code == 2
    assert run_cli("classify", tmp_path / "empty_dir_that_does_not_exist").exit_code == 1


def test_resume_skips_done_inputs_and_repairs_a_torn_line(tmp_path):
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(6):
        sf.write(
            folder / f"c{i}.wav",
            synth.cadenced(synth.spec("ITU", "busy"), 2.5, start_offset_s=0.05 * i),
            8000,
        )
    out = tmp_path / "out.jsonl"
    first = run_cli("classify", folder / "c0.wav", folder / "c1.wav", "-o", out)
    assert first.exit_code == 0
    with open(out, "a") as handle:  # a crash in the middle of writing the third record
        handle.write('{"path": "' + str(folder / "c2.wav") + '", "label": "bu')
    second = run_cli("classify", folder, "-o", out)
    assert second.exit_code == 0 and "resuming: 2 of 6" in second.stderr
    paths = [json.loads(line)["path"] for line in open(out)]
    assert sorted(paths) == sorted(str(folder / f"c{i}.wav") for i in range(6))
    third = run_cli("classify", folder, "-o", out)
    assert third.exit_code == 0 and len(open(out).readlines()) == 6


def _processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line contains *text* (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = next(
                line for line in (entry / "status").read_text().splitlines() if line.startswith("State:")
            )
        except (OSError, StopIteration):
            continue
        if text in cmdline and "zombie" not in state:
            found.append(int(entry.name))
    return found


def test_interrupted_parallel_run_resumes_without_loss_or_duplicates(tmp_path):
    folder = tmp_path / "batch"
    folder.mkdir()
    x = synth.cadenced(synth.spec("CN", "ringback"), 12.0)  # ringback: analysed to the end
    for i in range(40):
        sf.write(folder / f"r{i:02d}.wav", x, 8000)
    out = tmp_path / "out.jsonl"
    cmd = [
        sys.executable,
        "-m",
        "audio_classifier.cli",
        "classify",
        str(folder),
        "-o",
        str(out),
        "--jobs",
        "2",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 5):
        time.sleep(0.05)
    assert proc.poll() is None, "the batch finished before it could be interrupted"
    proc.send_signal(signal.SIGKILL)  # a hard crash: nothing gets to clean up
    proc.wait()
    partial = len(out.read_text().splitlines())
    assert 5 <= partial < 40
    # its pool workers must not outlive it (they would hold their models' memory forever)
    deadline = time.time() + 10
    while time.time() < deadline and _processes_mentioning(str(folder)):
        time.sleep(0.2)
    assert not _processes_mentioning(str(folder))
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 40 and len({r["path"] for r in records}) == 40
    assert {r["label"] for r in records} == {"ringback"}


def test_readme_first_command_labels_every_tone_fixture():
    """The README's first command on the shipped fixtures: every tone fixture right (the
    tone channel's job); every speech fixture gets a decision (how many are right is the
    trained model's held-out quality, reported by 'evaluate', not asserted on 19 clips)."""
    truth = {row["path"]: row["label"] for row in csv.DictReader(open(FIXTURES / "manifest.csv"))}
    result = subprocess.run(
        [sys.executable, "-m", "audio_classifier.cli", "classify", str(FIXTURES)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    records = {
        os.path.relpath(json.loads(line)["path"], FIXTURES): json.loads(line)
        for line in result.stdout.splitlines()
    }
    assert set(records) == set(truth)
    wrong = {
        path: r["label"]
        for path, r in records.items()
        if path.startswith("tones/") and r["label"] != truth[path]
    }
    assert not wrong
    speech = [r for path, r in records.items() if path.startswith("speech/")]
    assert len(speech) >= 19 and all(r["final"] and r["error"] is None and r["label"] for r in speech)


def test_labels_command():
    result = run_cli("labels", "--json")
    assert result.exit_code == 0
    assert [item["id"] for item in json.loads(result.stdout)][:2] == ["vacant", "number_changed"]


def test_stream_command_reads_stdin():
    """Raw mu-law piped in (as a dialer's tap would); decisions out as JSON lines."""
    data = (FIXTURES / "tones" / "itu_congestion.ul").read_bytes()
    result = subprocess.run(
        [sys.executable, "-m", "audio_classifier.cli", "stream", "--encoding", "mulaw", "--no-asr"],
        input=data,
        capture_output=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert lines and all(m["type"] == "decision" for m in lines)
    assert [m["final"] for m in lines].count(True) == 1 and lines[-1]["final"]
    assert lines[-1]["label"] == "congestion_tone"
    bad = subprocess.run(
        [sys.executable, "-m", "audio_classifier.cli", "stream", "--encoding", "pcm_s16le", "--no-asr"],
        input=b"",
        capture_output=True,
        timeout=120,
    )
    assert bad.returncode == 1 and b"EmptyAudioError" in bad.stdout
    assert b"starts like an audio file" not in result.stderr
    wav = subprocess.run(
        [sys.executable, "-m", "audio_classifier.cli", "stream", "--no-asr", "--no-model", "--final-only"],
        input=(FIXTURES / "tones" / "cn_busy.wav").read_bytes(),
        capture_output=True,
        timeout=120,
    )
    assert wav.returncode == 0 and b"note: the input starts like an audio file (WAV" in wav.stderr


def test_option_errors_name_options_and_batch_options_only_where_they_work():
    result = run_cli("classify", "--threshold", "2", FIXTURES / "tones" / "cn_busy.wav")
    assert result.exit_code == 2 and "--threshold must be within (0, 1]" in result.output
    assert "decision_threshold" not in result.output
    result = run_cli("classify", "--max-duration", "0", FIXTURES / "tones" / "cn_busy.wav")
    assert "--max-duration must be > 0" in result.output
    for command in ("stream", "serve"):
        help_text = run_cli(command, "--help").output
        assert "--jobs" not in help_text and "--progress" not in help_text
        assert run_cli(command, "--jobs", "2").exit_code == 2  # no such option
    assert "--jobs" in run_cli("classify", "--help").output


def test_evaluate_command(tmp_path):
    manifest = tmp_path / "m.csv"
    rows = [r for r in csv.DictReader(open(FIXTURES / "manifest.csv")) if r["path"].startswith("tones/")]
    with open(manifest, "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["path", "label"])
        writer.writeheader()
        writer.writerows({"path": str(FIXTURES / r["path"]), "label": r["label"]} for r in rows)
    out = tmp_path / "eval"
    result = run_cli("evaluate", manifest, "--out-dir", out, "--no-asr")
    assert result.exit_code == 0, result.output
    assert "macro-F1 1.0000" in result.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["scored"] == len(rows) and metrics["calibration"]["ece"] >= 0
    assert (out / "confusion.png").stat().st_size > 1000 and (out / "reliability.png").stat().st_size > 1000
    again = run_cli("evaluate", manifest, "--out-dir", out, "--no-asr")  # resumes: nothing left to classify
    assert again.exit_code == 0 and len((out / "predictions.jsonl").read_text().splitlines()) == len(rows)
    bad = tmp_path / "bad.csv"
    bad.write_text("path,label\nx.wav,nonsense\n")
    assert run_cli("evaluate", bad, "--out-dir", tmp_path / "e2").exit_code == 2


def test_evaluate_by_a_column_scores_each_slice(tmp_path):
    """``--by kind`` reports each value's clips, accuracy and decision time, as counted from
    the predictions themselves; a column the manifest lacks is refused before any analysis."""
    manifest = tmp_path / "m.csv"
    fixtures = list(csv.DictReader(open(FIXTURES / "manifest.csv")))
    with open(manifest, "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["path", "label", "onset_s", "kind"])
        writer.writeheader()
        writer.writerows(
            {**r, "path": str(FIXTURES / r["path"]), "kind": r["path"].split("/")[0]} for r in fixtures
        )
    out = tmp_path / "eval"
    result = run_cli("evaluate", manifest, "--out-dir", out, "--no-asr", "--no-samples", "--by", "kind")
    assert result.exit_code == 0, result.output
    assert "by kind" in result.stdout
    slices = {row["value"]: row for row in json.loads((out / "metrics.json").read_text())["by"]["kind"]}
    records = [json.loads(line) for line in (out / "predictions.jsonl").read_text().splitlines()]
    kinds = {str(FIXTURES / r["path"]): r["path"].split("/")[0] for r in fixtures}
    assert set(slices) == set(kinds.values()) and len(slices) > 1
    for kind, row in slices.items():
        mine = [r for r in records if kinds[r["path"]] == kind]
        assert row["clips"] == len(mine)
        assert row["accuracy"] == pytest.approx(np.mean([r["label"] == r["manifest_label"] for r in mine]))
        announcements = [r for r in mine if r["manifest_label"] in ANNOUNCEMENT_LABELS]
        onset = row["announcement_decided_after_onset_s"]
        assert onset.get("count", 0) == len(announcements)
        if announcements:
            expected = np.median([r["decided_at_s"] - float(r["onset_s"]) for r in announcements])
            assert onset["median"] == pytest.approx(expected)

    for column, message in (("nope", "no such column"), ("path", "no such column")):
        refused = run_cli("evaluate", manifest, "--out-dir", tmp_path / column, "--by", column)
        assert refused.exit_code == 2 and message in refused.output
        assert not (tmp_path / column / "predictions.jsonl").exists()  # refused before any analysis


def test_evaluate_thresholds_replay_what_runs_at_each_threshold_decide(tmp_path):
    """One run to the end of every clip, replayed at a threshold, gives the labels,
    confidences and decision times of a run made at that threshold."""
    manifest = tmp_path / "m.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["path", "label", "onset_s"])
        writer.writeheader()
        writer.writerows(
            {**r, "path": str(FIXTURES / r["path"])} for r in csv.DictReader(open(FIXTURES / "manifest.csv"))
        )
    common = ["--no-asr", "--no-samples", "--jobs", "1"]

    def decisions(folder):
        records = [json.loads(line) for line in (folder / "predictions.jsonl").read_text().splitlines()]
        return {r["path"]: (r["label"], r["confidence"], r["decided_at_s"]) for r in records}

    sweep = run_cli(
        "evaluate", manifest, "--out-dir", tmp_path / "sweep", "--thresholds", "0.6,0.99", *common
    )
    assert sweep.exit_code == 0, sweep.output
    assert "decision thresholds" in sweep.stdout
    plain = run_cli("evaluate", manifest, "--out-dir", tmp_path / "plain", *common)
    low = run_cli("evaluate", manifest, "--out-dir", tmp_path / "low", "--threshold", "0.6", *common)
    assert plain.exit_code == 0 and low.exit_code == 0
    assert decisions(tmp_path / "sweep") == decisions(tmp_path / "plain")
    rows = {
        row["threshold"]: row
        for row in json.loads((tmp_path / "sweep" / "metrics.json").read_text())["thresholds"]
    }
    assert sorted(rows) == [0.6, 0.9, 0.99]
    at_low = json.loads((tmp_path / "low" / "metrics.json").read_text())
    for key in ("accuracy", "macro_f1", "decided_at_s", "announcement_decided_after_onset_s"):
        assert rows[0.6][key] == at_low[key], key
    assert rows[0.6]["ece"] == at_low["calibration"]["ece"]
    # a lower threshold decides no later, and here some clips strictly sooner
    assert rows[0.6]["decided_at_s"]["mean"] < rows[0.99]["decided_at_s"]["mean"]
    # streams.jsonl holds every clip analysed to its end
    streams = [json.loads(line) for line in (tmp_path / "sweep" / "streams.jsonl").read_text().splitlines()]
    assert len(streams) == 36 and all("peaks" in r for r in streams)
    assert (
        run_cli("evaluate", manifest, "--out-dir", tmp_path / "x", "--thresholds", "0.5,1.5").exit_code == 2
    )


def test_confidence_map_options(tmp_path):
    sit = FIXTURES / "tones" / "sit_vc.flac"
    records = [
        json.loads(line) for line in run_cli("classify", sit, "--no-asr", "--no-samples").stdout.splitlines()
    ]
    assert records[0]["confidence"] != records[0]["score"]  # the shipped map
    bare = run_cli("classify", sit, "--no-asr", "--no-samples", "--no-confidence-map")
    record = json.loads(bare.stdout)
    assert record["confidence"] == record["score"] and record["action"] == "review"  # 0.97 on a bare score
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "nope"}')
    refused = run_cli("classify", sit, "--confidence-map", bad)
    assert refused.exit_code == 2 and "not a confidence map" in refused.output
    both = run_cli("classify", sit, "--confidence-map", bad, "--no-confidence-map")
    assert both.exit_code == 2


def test_no_model_runs_without_the_model():
    result = run_cli("classify", FIXTURES / "tones" / "sit_vc.flac", "--no-model", "--no-asr", "--no-samples")
    record = json.loads(result.stdout)
    assert {e["channel"] for e in record["evidence"]} == {"tone"}
    assert record["confidence"] == record["score"]  # the shipped map is for the shipped model


def test_evaluate_compare_model_puts_two_models_side_by_side(tmp_path):
    """The shipped model beside a copy whose card biases every window towards "human": the
    same calls, each model's own figures, and the calls only one of them gets right."""
    import shutil

    from audio_classifier.model import DEFAULT_MODEL

    biased = tmp_path / "biased.onnx"
    shutil.copy(DEFAULT_MODEL, biased)
    card = json.loads(DEFAULT_MODEL.with_suffix(".json").read_text())
    card["bias"]["human"] = card["bias"]["human"] + 30.0
    biased.with_suffix(".json").write_text(json.dumps(card))
    manifest = tmp_path / "m.csv"
    rows = [
        r
        for r in csv.DictReader(open(FIXTURES / "manifest.csv"))
        if r["label"] in ANNOUNCEMENT_LABELS and r["path"].startswith("speech/")
    ][:8]
    with open(manifest, "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["path", "label"])
        writer.writeheader()
        writer.writerows({"path": str(FIXTURES / r["path"]), "label": r["label"]} for r in rows)
    out = tmp_path / "eval"
    result = run_cli(
        "evaluate", manifest, "--out-dir", out, "--no-asr", "--no-samples", "--compare-model", biased
    )
    assert result.exit_code == 0, result.output
    compared = json.loads((out / "compare-model" / "comparison.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    assert compared["calls"] == len(rows) == metrics["scored"]
    assert compared["first"]["accuracy"] == pytest.approx(metrics["accuracy"])
    second = [
        json.loads(line) for line in (out / "compare-model" / "predictions.jsonl").read_text().splitlines()
    ]
    assert compared["second"]["announcements_as_answers"] == sum(r["label"] == "human" for r in second) > 0
    tally = compared["label_right"]
    assert sum(tally.values()) == len(rows) and tally["first_only"] > 0
    assert "only early_media" in result.stdout and "biased" in result.stdout
    itself = run_cli(
        "evaluate",
        manifest,
        "--out-dir",
        tmp_path / "self",
        "--no-asr",
        "--no-samples",
        "--compare-model",
        DEFAULT_MODEL,
    )
    assert itself.exit_code == 0, itself.output
    same = json.loads((tmp_path / "self" / "compare-model" / "comparison.json").read_text())
    assert same["first"] == same["second"]  # the shipped model gets the shipped map both times
    assert same["names"] == ["first", "second"]
    both = run_cli(
        "evaluate", manifest, "--out-dir", tmp_path / "x", "--compare-model", biased, "--thresholds", "0.8"
    )
    assert both.exit_code == 2 and "choose one" in both.output
