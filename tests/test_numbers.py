"""The number registry on both engines it supports: SQLite (a file) and a real PostgreSQL
server started for the test run. Imports, outcomes, agent marks, policy, exports, bad input,
and the whole path from recordings to a cleaned list."""

from __future__ import annotations

import csv
import json
import os
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from audio_classifier.cli import main
from audio_classifier.errors import ConfigError, UsageError
from audio_classifier.numbers import InvalidNumber, Policy, Registry, normalise
from audio_classifier.numbers.policy import Outcome
from benchmarks.postgres import create_database, postgres_server

from .conftest import FIXTURES


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server for the session (benchmarks/postgres.py)."""
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    """A fresh, empty registry database on each engine."""
    if request.param == "sqlite":
        return str(tmp_path / "numbers.sqlite")
    return create_database(request.getfixturevalue("postgres"), f"t_{uuid.uuid4().hex[:12]}")


def _csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(open(path, newline="", encoding="utf-8")))


def test_numbers_are_normalised_or_refused_with_a_reason():
    assert normalise("138 0013 8000") == "+8613800138000"
    assert normalise("+86 (10) 6234-5678") == "+861062345678"
    assert normalise("+1 650 253 0000", "CN") == "+16502530000"
    assert normalise("6502530000", "US") == "+16502530000"
    for text, reason in (("", "empty"), ("call me", "not a phone number"), ("+999 1234", "country code")):
        with pytest.raises(InvalidNumber, match=reason):
            normalise(text)
    with pytest.raises(InvalidNumber, match=r"impossible|no such number range"):
        normalise("1380013800099999")


def test_import_dedupes_rejects_with_reasons_and_is_idempotent(database, tmp_path):
    leads = tmp_path / "leads.csv"
    leads.write_text(
        "number,name,campaign\n13800138000,Ann,spring\n138 0013 8000,Ann again,spring\n"
        "12,Bad,spring\n13912345678,Bo,spring\n"
    )
    with Registry(database) as registry:
        first = registry.import_leads(leads, source="vendorA", list_name="spring")
        accepted, rejected = _csv(first.accepted_file), _csv(first.rejected_file)
        assert (first.rows, first.accepted, first.new_numbers, first.new_entries) == (4, 2, 2, 2)
        assert [r["e164"] for r in accepted] == ["+8613800138000", "+8613912345678"]
        assert accepted[0]["name"] == "Ann" and accepted[0]["campaign"] == "spring"  # columns kept
        assert {r["line"]: r["reason"].split(":")[0] for r in rejected} == {
            "3": "duplicate of line 2",
            "4": "invalid",
        }
        before = (first.accepted_file.read_bytes(), first.rejected_file.read_bytes())
        again = registry.import_leads(leads, source="vendorA", list_name="spring")
        assert (again.new_numbers, again.new_entries) == (0, 0)
        assert (again.accepted_file.read_bytes(), again.rejected_file.read_bytes()) == before
        assert len(registry.list_numbers("spring")) == 2


def _outputs(tmp_path: Path, records: list[dict]) -> Path:
    path = tmp_path / "out.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_outcomes_block_by_policy_and_agents_mark(database, tmp_path):
    records = [
        {"path": "a.wav", "number": "13800000001", "label": "vacant", "confidence": 0.97, "error": None},
        {"path": "b.wav", "number": "13800000002", "label": "vacant", "confidence": 0.60, "error": None},
        {"path": "c.wav", "number": "13800000003", "label": "powered_off", "confidence": 0.95, "error": None},
        {"path": "d.wav", "number": "13800000004", "label": "human", "confidence": 0.93, "error": None},
        {"path": "e.wav", "number": "not a number", "label": "vacant", "confidence": 0.99, "error": None},
        {"path": "f.wav", "number": "13800000005", "label": None, "error": "UnreadableAudioError: x"},
        {"path": "g.wav", "label": "vacant", "confidence": 0.99, "error": None},
    ]
    out = _outputs(tmp_path, records)
    with Registry(database) as registry:
        result = registry.record(out)
        assert (result.added, result.already) == (4, 0)
        assert result.skipped == {"invalid number": 1, "failed input": 1, "no number": 1}
        assert registry.record(out).added == 0  # recording the same output again adds nothing
        states = registry.states(["+8613800000001", "+8613800000002", "+8613800000003", "+8613800000004"])
        assert states["+8613800000001"].status == "blocked"
        assert (
            states["+8613800000002"].status == "review"
            and "below the policy's 0.925" in states["+8613800000002"].rule
        )
        assert states["+8613800000003"].status == "retry" and states["+8613800000003"].due is not None
        assert states["+8613800000004"].status == "active"
        assert registry.mark("13800000004", "suspended", by="alice", note="heard 停机").status == "blocked"
        assert registry.mark("13800000004", "human", by="bob").status == "active"  # an agent lifts it
        _, state, history = registry.show("13800000004")
        assert [h["label"] for h in history] == ["human", "suspended", "human"]
        assert state.rule.startswith("human") and history[-1]["agent"] == "bob"
        blocked = dict(registry.blocked())
        assert list(blocked) == ["+8613800000001"] and "counted outcome" in blocked["+8613800000001"].rule


def test_live_outcomes_are_one_event_per_call(database):
    """A call id makes a reported outcome idempotent; without one (a client that sends no
    call id), two calls to a number with the same result are two outcomes, not one."""
    with Registry(database) as registry:
        same = {"origin": "classifier", "confidence": 0.97, "action": "remove"}
        assert registry.add_outcome("13800000009", "busy_tone", **same)
        assert registry.add_outcome("13800000009", "busy_tone", **same)
        assert registry.add_outcome("13800000009", "busy_tone", call_id="c1", **same)
        assert not registry.add_outcome("13800000009", "busy_tone", call_id="c1", **same)  # a retried report
        _, _, history = registry.show("13800000009")
        assert [h["label"] for h in history] == ["busy_tone"] * 3


def _open_registry(path: str, barrier, results) -> None:
    barrier.wait()
    try:
        Registry(path).close()
        results.put("ok")
    except Exception as exc:  # noqa: BLE001 - the test reports which
        results.put(f"{type(exc).__name__}: {exc}")


def test_processes_creating_one_sqlite_registry_at_once_all_open_it(tmp_path):
    """Two server workers started with a new --numbers-db create it together: Alembic's
    migrations must not run twice ("table numbers already exists")."""
    import multiprocessing

    context = multiprocessing.get_context("fork")
    for trial in range(5):
        path = str(tmp_path / f"n{trial}.sqlite")
        barrier, results = context.Barrier(4), context.Queue()
        workers = [context.Process(target=_open_registry, args=(path, barrier, results)) for _ in range(4)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(60)
        assert [results.get(timeout=5) for _ in workers] == ["ok"] * 4


def test_policy_is_data():
    strict = Policy.from_mapping(
        {"block": {"labels": ["vacant"], "min_confidence": 0.5, "outcomes": 2}, "retry": {"busy": "30m"}}
    )
    now = datetime.now(UTC)
    once = [Outcome(1, "vacant", 0.9, "classifier", now)]
    assert strict.state(once).status == "active"  # one outcome is not two in a row
    twice = [*once, Outcome(2, "vacant", 0.8, "classifier", now + timedelta(minutes=5))]
    assert strict.state(twice).status == "blocked" and strict.state(twice).outcomes == (1, 2)
    interrupted = [*once, Outcome(3, "human", 0.9, "classifier", now + timedelta(minutes=1)), twice[1]]
    assert strict.state(interrupted).status == "active"
    busy = strict.state([Outcome(4, "busy", 0.9, "classifier", now)])
    assert busy.status == "retry" and busy.due == now + timedelta(minutes=30)
    assert not busy.callable_at(now) and busy.callable_at(now + timedelta(hours=1))
    with pytest.raises(ConfigError, match="unknown labels nonsense"):
        Policy.from_mapping({"block": {"labels": ["nonsense"]}})
    with pytest.raises(ConfigError, match="duration"):
        Policy.from_mapping({"retry": {"busy": "soon"}})


def test_bad_lead_files_are_refused_whole(database, tmp_path):
    gbk = tmp_path / "gbk.csv"
    gbk.write_bytes("number,name\n13800138000,张三\n".encode("gbk"))
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes("number,name\n13800138000,张三\n".encode("utf-16"))
    no_column = tmp_path / "phones.csv"
    no_column.write_text("phone\n13800138000\n")
    with Registry(database) as registry:
        with pytest.raises(UsageError, match="not UTF-8"):
            registry.import_leads(gbk, source="v", list_name="l")
        with pytest.raises(UsageError, match="no 'number' column"):
            registry.import_leads(no_column, source="v", list_name="l")
        assert registry.list_numbers("l") == []  # nothing half-imported
        assert registry.import_leads(utf16, source="v", list_name="l").accepted == 1
        assert _csv(tmp_path / "utf16.accepted.csv")[0]["name"] == "张三"


def test_recordings_to_a_cleaned_list_end_to_end(database, tmp_path):
    """classify a manifest with a number column -> numbers record -> a new list's import
    rejects exactly the numbers the policy blocks, each with its reason."""
    speech = ["ported", "barred", "vacant", "powered_off", "human", "number_changed", "busy"]
    manifest = tmp_path / "calls.csv"
    numbers = {label: f"1390000{i:04d}" for i, label in enumerate(speech)}
    manifest.write_text(
        "path,number\n"
        + "".join(f"{FIXTURES / 'speech' / f'{label}.wav'},{numbers[label]}\n" for label in speech)
    )
    out = tmp_path / "out.jsonl"
    runner = CliRunner()
    assert (
        runner.invoke(main, ["classify", "--manifest", str(manifest), "-o", str(out), "--no-asr"]).exit_code
        == 0
    )
    env = {"AUDIO_CLASSIFIER_NUMBERS_DB": database}
    recorded = runner.invoke(main, ["numbers", "record", str(out)], env=env)
    assert recorded.exit_code == 0 and f"{len(speech)} outcomes recorded" in recorded.output, recorded.output
    policy = Policy.load()
    records = [json.loads(line) for line in out.read_text().splitlines()]
    expected = {
        normalise(r["number"])
        for r in records
        if r["label"] in policy.block and r["confidence"] >= policy.min_confidence
    }
    assert expected, "the fixtures include destructive outcomes the policy counts"
    leads = tmp_path / "new_list.csv"
    leads.write_text("number,vendor_ref\n" + "".join(f"{n},ref{i}\n" for i, n in enumerate(numbers.values())))
    imported = runner.invoke(
        main, ["numbers", "import", str(leads), "--source", "vendorB", "--list", "autumn"], env=env
    )
    assert imported.exit_code == 0, imported.output
    rejected = _csv(tmp_path / "new_list.rejected.csv")
    assert {normalise(r["number"]) for r in rejected} == expected
    assert all(r["reason"].startswith("blocked: ") for r in rejected)
    shown = json.loads(
        runner.invoke(main, ["numbers", "show", next(iter(expected)), "--json"], env=env).output
    )
    assert shown["state"] == "blocked" and shown["history"][0]["recording"].endswith(".wav")
    active = runner.invoke(main, ["numbers", "export", "--list", "autumn", "--active"], env=env).output
    assert not any(e in active for e in expected)


def test_the_cli_says_what_is_wrong(tmp_path):
    env = {"AUDIO_CLASSIFIER_NUMBERS_DB": str(tmp_path / "r.sqlite")}
    runner = CliRunner()
    bad_url = runner.invoke(main, ["numbers", "show", "13800138000", "--db", "nosuch://x"])
    assert bad_url.exit_code == 1 and "database URL" in bad_url.output
    bad_number = runner.invoke(main, ["numbers", "mark", "abc", "vacant", "--by", "a"], env=env)
    assert bad_number.exit_code == 1 and "not a phone number" in bad_number.output
    assert (
        runner.invoke(main, ["numbers", "mark", "13800138000", "nonsense", "--by", "a"], env=env).exit_code
        == 2
    )


def test_the_fast_normaliser_accepts_what_the_library_accepts():
    import random

    from audio_classifier.numbers.phone import Normaliser

    rng = random.Random(7)
    fast = Normaliser("CN")
    for _ in range(3000):
        digits = "1" + "".join(rng.choice("0123456789") for _ in range(10))
        wide = digits.translate(str.maketrans("0123456789", "０１２３４５６７８９"))  # full-width digits
        arabic = digits.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))
        for text in (
            digits,
            "+86" + digits,
            f"+86 {digits[:3]} {digits[3:7]} {digits[7:]}",
            f"{digits[:3]}-{digits[3:]}",
            wide,
            arabic,
        ):
            try:
                expected = normalise(text)
            except InvalidNumber:
                expected = None
            try:
                got = fast(text)
            except InvalidNumber:
                got = None
            assert got == expected, text
            assert got is None or got.isascii()


def test_a_file_unreadable_halfway_changes_nothing(database, tmp_path):
    """The bad byte comes after the first chunk of rows has been entered: the import is one
    transaction, so the registry and the output files stay as they were."""
    from audio_classifier.numbers.registry import IMPORT_CHUNK

    leads = tmp_path / "big.csv"
    good = "".join(f"1390{i:07d},x\n" for i in range(IMPORT_CHUNK + 500))
    leads.write_bytes(("number,name\n" + good).encode() + "13800138000,张三\n".encode("gbk"))
    with Registry(database) as registry:
        with pytest.raises(UsageError, match=rf"not UTF-8 \(line {IMPORT_CHUNK + 502}\)"):
            registry.import_leads(leads, source="v", list_name="big")
        assert registry.list_numbers("big") == []
        assert registry.states(["+8613900000001"])["+8613900000001"].rule == "no counted outcome"
    assert not (tmp_path / "big.accepted.csv").exists() and not (tmp_path / "big.rejected.csv").exists()
    assert not list(tmp_path.glob(".big.*"))  # no temporary output left behind


def test_forget_erases_and_a_blocked_number_stays_blocked_by_its_hash(database, tmp_path):
    import sqlalchemy as sa

    with Registry(database) as registry:
        registry.mark("13800000001", "vacant", by="alice")
        registry.mark("13800000002", "human", by="alice")
        assert registry.forget("13800000001")[2] is True and registry.forget("13800000002")[2] is False
        with registry.engine.connect() as connection:
            stored = connection.execute(sa.text("SELECT e164 FROM numbers")).scalars().all()
            assert stored == [] and connection.execute(sa.text("SELECT count(*) FROM events")).scalar() == 0
        _, state, history = registry.show("13800000001")
        assert history == [] and state.status == "blocked" and "forgotten" in state.rule
        leads = tmp_path / "again.csv"
        leads.write_text("number\n13800000001\n13800000002\n")
        result = registry.import_leads(leads, source="v", list_name="l")
        assert result.accepted == 1 and result.rejected == {"blocked": 1}


def test_due_lists_numbers_whose_outcomes_are_old(database):
    with Registry(database) as registry:
        registry.mark("13800000003", "powered_off", by="a")
        assert [e for e, *_ in registry.due(timedelta(seconds=0))] == ["+8613800000003"]
        assert registry.due(timedelta(days=1)) == []
    runner = CliRunner()
    env = {"AUDIO_CLASSIFIER_NUMBERS_DB": database}
    assert runner.invoke(main, ["numbers", "due", "--older-than", "soon"], env=env).exit_code == 2
    listed = runner.invoke(main, ["numbers", "due", "--older-than", "0s"], env=env)
    assert listed.exit_code == 0 and "+8613800000003,retry," in listed.output


def test_the_server_records_live_calls_and_takes_agents_marks(tmp_path):
    import httpx
    import numpy as np

    from audio_classifier import Classifier, ClassifierConfig, synth
    from audio_classifier.client import stream
    from audio_classifier.server import BackgroundServer, ServerSettings, create_app

    db = str(tmp_path / "live.sqlite")
    settings = ServerSettings(api_keys=frozenset({"k"}), numbers_db=db)
    config = ClassifierConfig(asr_model=None, model_path=None, samples_path=None)
    busy = (np.clip(synth.cadenced(synth.spec("CN", "busy"), 4.0), -1, 1) * 32767).astype("<i2").tobytes()
    with BackgroundServer(create_app(lambda: Classifier(config), settings), audiosocket=False) as running:
        messages = stream(
            running.ws_url, busy, api_key="k", metadata={"number": "13800000009", "call_id": "c1"}
        )
        assert any(m.get("final") for m in messages)
        url = running.url + "/v1/numbers/13800000009/events"
        assert httpx.post(url, json={"label": "vacant", "by": "alice"}).status_code == 401
        marked = httpx.post(url, json={"label": "vacant", "by": "alice"}, headers={"X-API-Key": "k"})
        assert marked.status_code == 200 and marked.json()["state"] == "blocked"
        for body in ({"label": "nonsense", "by": "a"}, {"label": "vacant"}, [1]):
            bad = httpx.post(url, json=body, headers={"X-API-Key": "k"})
            assert bad.status_code == 400 and bad.json()["code"] in ("bad_event", "bad_json"), body
    with Registry(db) as registry:
        _, state, history = registry.show("13800000009")
    assert [(h["origin"], h["label"], h["call_id"]) for h in history] == [
        ("classifier", "busy_tone", "c1"),
        ("agent", "vacant", None),
    ]
    assert state.status == "blocked"


def test_bad_policies_and_names_are_clear_errors(tmp_path):
    for data, words in (
        ({"block": {"outcomes": "x"}}, "outcomes an integer"),
        ({"block": 1}, "[block] must be a table"),
        ({"block": {"labels": "vacant"}}, "labels must be a list"),
        ({"block": {"labels": ["vacant"]}, "stop_contact": {"labels": ["ported"]}}, "must also block"),
    ):
        with pytest.raises(ConfigError, match=re.escape(words)):
            Policy.from_mapping(data)
    leads = tmp_path / "l.csv"
    leads.write_text("number\n13800138000\n")
    with Registry(str(tmp_path / "r.sqlite")) as registry:
        with pytest.raises(UsageError, match="at most 200"):
            registry.import_leads(leads, source="v" * 201, list_name="l")
        with pytest.raises(UsageError, match="cannot write the import's output"):
            registry.import_leads(
                leads, source="v", list_name="l", accepted=tmp_path / "no" / "such" / "a.csv"
            )
        assert registry.list_numbers("l") == []
        with pytest.raises(UsageError, match="region 'XX'"):
            Registry(str(tmp_path / "r2.sqlite"), region="XX")


def test_concurrent_writers_neither_fail_nor_duplicate(database, tmp_path):
    """Two registries (as the server and the command line are) write the same outcomes and
    the same new numbers at once."""
    import threading

    records = [
        {"path": f"c{i}.wav", "number": f"1390000{i:04d}", "label": "busy", "confidence": 0.95, "error": None}
        for i in range(300)
    ]
    out = _outputs(tmp_path, records)
    results, errors = [], []

    def write() -> None:
        try:
            with Registry(database) as registry:
                results.append(registry.record(out).added)
        except Exception as exc:  # noqa: BLE001 - the test reports any failure
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and sum(results) == 300
    with Registry(database) as registry:
        assert registry.record(out).added == 0


def test_the_newest_migration_is_the_one_the_registry_expects():
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from audio_classifier.numbers import registry

    config = Config()
    config.set_main_option("script_location", str(Path(registry.__file__).parent / "migrations"))
    assert ScriptDirectory.from_config(config).get_current_head() == registry.HEAD_REVISION
    assert registry._redact("postgresql+psycopg://u:secret@h/db") == "postgresql+psycopg://u:***@h/db"


def test_the_events_endpoint_bounds_its_body(tmp_path):
    import httpx

    from audio_classifier import Classifier, ClassifierConfig
    from audio_classifier.server import BackgroundServer, ServerSettings, create_app

    settings = ServerSettings(numbers_db=str(tmp_path / "r.sqlite"))
    config = ClassifierConfig(asr_model=None, model_path=None, samples_path=None)
    with BackgroundServer(create_app(lambda: Classifier(config), settings), audiosocket=False) as running:
        url = running.url + "/v1/numbers/13800138000/events"
        big = httpx.post(url, content=b'{"label": "vacant", "by": "a", "note": "' + b"x" * 100_000 + b'"}')
        assert big.status_code == 413 and big.json()["code"] == "too_large"
        long_agent = httpx.post(url, json={"label": "vacant", "by": "a" * 500})
        assert long_agent.status_code == 400 and "at most 200" in long_agent.json()["error"]


def test_report_rates_vendors_with_intervals_and_audits_clearance(database, tmp_path):
    from audio_classifier.numbers.registry import wilson_interval

    low, high = wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)  # the textbook value
    low, high = wilson_interval(5, 10)
    assert (low, high) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("number\n" + "".join(f"1390000{i:04d}\n" for i in range(10)))
    b.write_text("number\n" + "".join(f"1370000{i:04d}\n" for i in range(4)))
    with Registry(database) as registry:
        registry.import_leads(a, source="vendorA", list_name="l")
        registry.import_leads(b, source="vendorB", list_name="l")
        for i in range(3):
            registry.mark(f"1390000{i:04d}", "vacant", by="qa")  # invalid
        registry.mark("13900000003", "barred", by="qa")  # blocked, not invalid
        report = registry.report("source")
    rows = {g["source"]: g for g in report["groups"]}
    assert (rows["vendorA"]["entries"], rows["vendorA"]["invalid"], rows["vendorA"]["blocked_other"]) == (
        10,
        3,
        1,
    )
    assert rows["vendorA"]["invalid_rate"] == pytest.approx(0.3) and rows["vendorB"]["invalid"] == 0
    assert rows["vendorA"]["ci95_low"] < 0.3 < rows["vendorA"]["ci95_high"]
    assert report["blocked_on_lists"] == 4 and report["blocked_still_callable"] == 0
    env = {"AUDIO_CLASSIFIER_NUMBERS_DB": database}
    chart = tmp_path / "chart.png"
    result = CliRunner().invoke(main, ["numbers", "report", "--by", "month", "--chart", str(chart)], env=env)
    assert result.exit_code == 0 and "clearance audit: 4 blocked numbers on lists, 0 of them" in result.output
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert CliRunner().invoke(main, ["numbers", "report", "--by", "vendor"], env=env).exit_code == 2


def test_a_100_mb_field_rejects_its_row_only(database, tmp_path):
    """What a broken export from a spreadsheet may hold: one row's field of 100 MB. That row
    is rejected with its line and why; the rows around it are imported."""
    leads = tmp_path / "leads.csv"
    with open(leads, "w") as handle:
        handle.write("number,name\n13800138001,a\n13800138002,")
        handle.write("x" * (100 * 2**20))
        handle.write("\n13800138003,c\n")
    with Registry(database) as registry:
        result = registry.import_leads(leads, source="v", list_name="l")
        assert (result.rows, result.accepted) == (3, 2)
        assert [e for e, _, _ in registry.list_numbers("l")] == ["+8613800138001", "+8613800138003"]
    rejected = _csv(tmp_path / "leads.rejected.csv")
    assert [(r["line"], r["reason"]) for r in rejected] == [
        ("3", "unreadable: a field is larger than 128 KiB")
    ]


def test_importing_while_the_server_records_loses_nothing(database, tmp_path):
    """The command line imports a lead file while the service takes agents' marks for some
    of its numbers: both finish, every lead is on the list once, every mark is one event."""
    import subprocess
    import sys
    import threading

    import httpx

    from audio_classifier import Classifier, ClassifierConfig
    from audio_classifier.server import BackgroundServer, ServerSettings, create_app

    from .conftest import ROOT

    numbers = [f"1390001{i:04d}" for i in range(6000)]
    leads = tmp_path / "leads.csv"
    leads.write_text("number\n" + "\n".join(numbers) + "\n")
    config = ClassifierConfig(asr_model=None, model_path=None, samples_path=None)
    settings = ServerSettings(api_keys=frozenset({"k"}), numbers_db=database)
    marked, failures = [], []
    with BackgroundServer(create_app(lambda: Classifier(config), settings), audiosocket=False) as running:
        importer = subprocess.Popen(
            [sys.executable, "-m", "audio_classifier.cli", "numbers", "import", str(leads), "--db", database,
             "--source", "v", "--list", "l"],
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip

        def mark() -> None:
            with httpx.Client(headers={"X-API-Key": "k"}, timeout=60) as client:
                for number in numbers[::300]:
                    response = client.post(
                        f"{running.url}/v1/numbers/{number}/events", json={"label": "busy", "by": "bo"}
                    )
                    (marked if response.status_code == 200 else failures).append(
                        (number, response.status_code)
                    )

        thread = threading.Thread(target=mark)
        thread.start()
        _, stderr = importer.communicate(timeout=300)
        thread.join(120)
    assert importer.returncode == 0, stderr.decode()
    assert not failures and len(marked) == len(numbers[::300])
    with Registry(database) as registry:
        on_list = [e for e, _, _ in registry.list_numbers("l")]
        assert len(on_list) == len(set(on_list)) == len(numbers)
        for number in numbers[::300]:
            _, _, history = registry.show(number)
            assert [(h["origin"], h["label"]) for h in history] == [("agent", "busy")]


def test_a_new_sqlite_registry_waits_for_the_creation_lock(tmp_path):
    """Opening a SQLite registry (its first connection, the revision check, the migration)
    happens under ``<database>.lock``: while another process holds it, nothing is created."""
    import fcntl
    import threading

    path = tmp_path / "n.sqlite"
    opened = []
    with open(f"{path}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        opener = threading.Thread(target=lambda: opened.append(Registry(str(path))))
        opener.start()
        opener.join(1.0)
        assert opener.is_alive() and not path.exists()
        fcntl.flock(lock, fcntl.LOCK_UN)
    opener.join(60)
    assert opened and path.exists()
    opened[0].close()


def test_a_registry_opens_where_its_lock_file_cannot_be_made(tmp_path):
    """The lock only keeps creators from colliding: a database whose lock file cannot be
    made (here a folder stands in its place) still opens, new or existing."""
    path = tmp_path / "n.sqlite"
    (tmp_path / "n.sqlite.lock").mkdir()
    Registry(str(path)).close()
    with Registry(str(path)) as registry:
        assert registry.add_outcome("13800000009", "busy_tone", origin="classifier", call_id="c")


def test_a_postgresql_url_without_its_driver_says_which_extra_to_install(monkeypatch):
    import sys

    from audio_classifier.numbers.registry import engine_for

    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if the [postgres] extra were not installed
    with pytest.raises(ConfigError, match=r"pip install 'audio-classifier\[postgres\]'") as caught:
        engine_for("postgresql+psycopg://user:secret@localhost/leads")
    assert "secret" not in str(caught.value)
