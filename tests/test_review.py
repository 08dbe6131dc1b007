"""The review queue, page API and round trips, on a real classify run over the fixtures and
a real Asterisk prompt (the browser itself: tests/test_review_browser.py)."""

from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner
from fastapi.testclient import TestClient

from audio_classifier import Classifier, ClassifierConfig, synth
from audio_classifier.cli import main
from audio_classifier.errors import UsageError
from audio_classifier.review.app import ReviewSettings
from audio_classifier.review.cli import review_app
from audio_classifier.review.store import Filters, ReviewStore, priority_of, read_output
from audio_classifier.samples import SampleLibrary, read_audio

from .conftest import FIXTURES

REAL_PROMPT = Path("/usr/share/asterisk/sounds/fr_CA_f_June/conf-onlyperson.wav")
"""A real recorded prompt (asterisk-core-sounds-fr-wav): the one the enrol round trip uses."""


def run_cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def batch(tmp_path_factory) -> tuple[Path, Path]:
    """(an audio folder, the classify output of a manifest over it): the fixtures with
    their expected labels, one of them deliberately mislabelled, and the real prompt."""
    folder = tmp_path_factory.mktemp("audio")
    rows = []
    with open(FIXTURES / "manifest.csv", newline="") as handle:
        for row in csv.DictReader(handle):
            if row["path"].endswith((".wav", ".flac")):
                target = folder / row["path"]
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(FIXTURES / row["path"], target)
                rows.append({"path": row["path"], "label": row["label"], "carrier": "fixtures"})
    shutil.copy(REAL_PROMPT, folder / "real_prompt.wav")
    rows.append({"path": "real_prompt.wav", "label": "vacant", "carrier": "asterisk-fr"})
    rows[0]["label"] = "fax" if rows[0]["label"] != "fax" else "busy_tone"  # a manifest error to find
    manifest = folder / "manifest.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.DictWriter(handle, ["path", "label", "carrier"])
        writer.writeheader()
        writer.writerows(rows)
    out = folder / "out.jsonl"
    result = run_cli("classify", "--manifest", manifest, "-o", out, "--no-asr")
    assert result.exit_code == 0, result.output
    return folder, out


@pytest.fixture()
def store(tmp_path, batch) -> ReviewStore:
    store = ReviewStore(tmp_path / "review.sqlite")
    store.load(batch[1])
    return store


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_loading_keeps_every_record_once_and_orders_by_need(store, batch):
    records = _records(batch[1])
    assert store.load(batch[1]) == (len(records), 0)  # loaded again: nothing new
    total, items = store.page(Filters(), 0, 200)
    assert total == len(records) == len(items)
    assert [i["priority"] for i in items] == sorted((i["priority"] for i in items), reverse=True)
    top = items[0]
    assert "disagrees with the manifest" in top["reasons"] and top["manifest_label"] != top["label"]
    calm = [i for i in items if not i["reasons"]]
    assert calm and all(i["priority"] == 0 for i in calm)


def test_priority_reasons():
    record = {
        "label": "vacant",
        "confidence": 0.5,
        "action": "remove",
        "evidence": [
            {"channel": "model", "label": "vacant", "score": 0.8},
            {"channel": "tone", "label": "ringback", "score": 0.9},
        ],
    }
    score, reasons = priority_of(record, "human")
    assert set(reasons) == {
        "disagrees with the manifest",
        "destructive action",
        "channels disagree",
        "low confidence",
    }
    assert score > priority_of({**record, "action": "keep"}, "human")[0] > priority_of(record, None)[0] - 3


def test_filters(store):
    total, _ = store.page(Filters(), 0, 10)
    by_label = store.page(Filters(label="busy_tone"), 0, 200)[1]
    assert by_label and all(i["label"] == "busy_tone" for i in by_label)
    low = store.page(Filters(max_confidence=0.95), 0, 200)[1]
    assert all(i["confidence"] <= 0.95 for i in low)
    carrier = store.page(Filters(column="carrier", value="asterisk-fr"), 0, 200)[1]
    assert [i["path"] for i in carrier] == ["real_prompt.wav"]
    first = store.page(Filters(), 0, 1)[1][0]
    store.correct(first["id"], "busy_tone", reviewer="ann")
    assert store.page(Filters(reviewed=True), 0, 200)[0] == 1
    assert store.page(Filters(reviewed=False), 0, 200)[0] == total - 1


def test_correct_export_evaluate_counts_the_correction(store, batch, tmp_path):
    """A reviewer's verdict reaches evaluate: the exported manifest carries it, and the
    evaluation of that manifest scores the classifier against it."""
    folder = batch[0]
    items = store.page(Filters(), 0, 200)[1]
    mislabelled = next(
        i for i in items if "disagrees with the manifest" in i["reasons"] and i["path"] != "real_prompt.wav"
    )
    other = next(i for i in items if i["path"] == "real_prompt.wav")
    store.correct(mislabelled["id"], mislabelled["label"], reviewer="ann")  # the classifier was right
    store.correct(other["id"], "human", reviewer="ann", note="a person, not a prompt")
    store.correct(other["id"], "human", reviewer="bob")
    exported = tmp_path / "reviewed.csv"
    with open(exported, "w", newline="") as handle:
        assert store.export(handle, folder) == 2
    rows = list(csv.DictReader(open(exported)))
    wanted = {
        str(folder / mislabelled["path"]): mislabelled["label"],
        str(folder / "real_prompt.wav"): "human",
    }
    assert {r["path"]: r["label"] for r in rows} == wanted
    result = run_cli("evaluate", exported, "--out-dir", tmp_path / "eval", "--no-asr", "--json")
    assert result.exit_code == 0, result.output
    evaluated = {r["path"]: r for r in _records(tmp_path / "eval" / "predictions.jsonl")}
    assert {path: r["manifest_label"] for path, r in evaluated.items()} == wanted
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["scored"] == 2
    assert {c["label"] for c in metrics["per_class"] if c["support"]} == set(wanted.values())
    agreement = store.agreement()
    assert agreement["reviewer_pairs"] == 1 and agreement["between_reviewers"] == 1.0
    assert 0 <= agreement["with_classifier"] <= 1


@pytest.fixture()
def client(store, batch, tmp_path):
    settings = ReviewSettings(
        store=store,
        audio_root=batch[0],
        samples_path=tmp_path / "library.sqlite",
        training_manifest=tmp_path / "training.csv",
    )
    with TestClient(review_app(settings), base_url="http://127.0.0.1") as c:
        c.settings = settings
        yield c


def _headers(client) -> dict:
    return {"X-CSRF-Token": client.settings.csrf_token}


def test_page_and_api(client):
    page = client.get("/review/")
    assert page.status_code == 200 and client.settings.csrf_token in page.text
    assert client.get("/").status_code == 200  # redirected to the page
    data = client.get("/review/api/records", params={"limit": 5}).json()
    assert data["total"] >= 30 and len(data["items"]) == 5
    record_id = data["items"][0]["id"]
    one = client.get(f"/review/api/records/{record_id}").json()
    assert one["audio"] is True and one["record"]["label"]
    audio = client.get(f"/review/api/records/{record_id}/audio")
    assert audio.status_code == 200 and audio.content[:4] in (b"RIFF", b"fLaC")
    drawing = client.get(f"/review/api/records/{record_id}/visual").json()
    assert drawing["spectrogram"]["rows"] == 64 and len(drawing["envelope"][0]) > 10
    assert client.get("/review/api/records", params={"limit": 5000}).status_code == 422


def test_only_loaded_recordings_are_served(client, store, batch, tmp_path):
    """Path traversal: ids that are not records, a record whose path leaves the audio root,
    encoded dots in the route: all 404 (or refused), never a file."""
    secret = tmp_path / "secret.wav"
    sf.write(secret, np.zeros(800, dtype=np.float32), 8000)
    hostile = tmp_path / "hostile.jsonl"
    hostile.write_text(
        json.dumps({"path": "../secret.wav", "label": "vacant", "confidence": 0.5})
        + "\n"
        + json.dumps({"path": str(secret), "label": "vacant", "confidence": 0.5})
        + "\n"
    )
    store.load(hostile)
    ids = [i["id"] for i in store.page(Filters(), 0, 200)[1] if "secret" in i["path"]]
    assert len(ids) == 2
    for record_id in ids:
        assert client.get(f"/review/api/records/{record_id}/audio").status_code == 404
        assert client.get(f"/review/api/records/{record_id}/visual").status_code == 404
        assert client.get(f"/review/api/records/{record_id}").json()["audio"] is False
    for route in (
        "/review/api/records/99999/audio",
        "/review/api/records/..%2F..%2Fetc%2Fpasswd/audio",
        "/review/api/records/1/../../../etc/passwd",
        "/review/..%2F..%2Fetc%2Fpasswd",
    ):
        response = client.get(route)
        assert response.status_code in (404, 422) and b"root:" not in response.content, route


def test_writes_need_the_csrf_token_and_json(client):
    record_id = client.get("/review/api/records", params={"limit": 1}).json()["items"][0]["id"]
    body = {"label": "busy_tone", "reviewer": "ann"}
    assert client.post(f"/review/api/records/{record_id}/verdict", json=body).status_code == 403
    wrong = client.post(f"/review/api/records/{record_id}/verdict", json=body, headers={"X-CSRF-Token": "x"})
    assert wrong.status_code == 403
    form = client.post(
        f"/review/api/records/{record_id}/verdict",
        content=json.dumps(body),
        headers={**_headers(client), "Content-Type": "text/plain"},
    )
    assert form.status_code == 415
    ok = client.post(f"/review/api/records/{record_id}/verdict", json=body, headers=_headers(client))
    assert ok.status_code == 200
    bad = client.post(
        f"/review/api/records/{record_id}/verdict", json={**body, "label": "nope"}, headers=_headers(client)
    )
    assert bad.status_code == 422
    assert (
        client.post("/review/api/records/99999/verdict", json=body, headers=_headers(client)).status_code
        == 404
    )
    assert client.settings.store.verdict(record_id) == "busy_tone"


def test_without_a_key_only_loopback_host_names_are_answered(client):
    """DNS rebinding: a page on another name, pointed at 127.0.0.1, sends its own Host."""
    assert client.get("/review/api/records", headers={"Host": "evil.example"}).status_code == 400
    assert client.get("/review/api/records", headers={"Host": "localhost:8766"}).status_code == 200
    assert client.get("/review/api/records", headers={"Host": "[::1]:8766"}).status_code == 200


def test_api_keys_guard_every_route(store, batch):
    settings = ReviewSettings(store=store, audio_root=batch[0], api_keys=frozenset({"k1"}))
    with TestClient(review_app(settings), base_url="http://127.0.0.1") as c:
        assert c.get("/review/").status_code == 401
        assert c.get("/review/api/records").status_code == 401
        assert c.get("/review/api/export").status_code == 401
        assert c.get("/review/api/records", headers={"Authorization": "Bearer k1"}).status_code == 200
        entered = c.get("/review/?token=k1", follow_redirects=False)
        assert entered.status_code == 303 and "token" not in entered.headers["location"]
        assert (
            "httponly" in entered.headers["set-cookie"].lower() and "k1" not in entered.headers["set-cookie"]
        )
        assert c.get("/review/api/records").status_code == 200  # the cookie now
        c.cookies.clear()
        c.cookies.set("review_key", "k1")  # the key itself is not what the cookie must hold
        assert c.get("/review/api/records").status_code == 401


def test_review_refuses_to_listen_beyond_loopback_without_a_key(batch, tmp_path):
    result = run_cli("review", batch[1], "--db", tmp_path / "r.sqlite", "--host", "0.0.0.0")
    assert result.exit_code != 0 and "--api-key" in result.output


def test_enrol_then_a_noisy_copy_is_recognised_by_its_fingerprint(client, tmp_path):
    """One action enrols a reviewed recording; a call-shaped, noisy copy of it is then
    labelled right by the fingerprint channel."""
    items = client.get(
        "/review/api/records", params={"limit": 200, "column": "carrier", "value": "asterisk-fr"}
    ).json()
    record_id = items["items"][0]["id"]
    verdict = {"label": "number_changed", "reviewer": "ann"}
    assert (
        client.post(
            f"/review/api/records/{record_id}/verdict", json=verdict, headers=_headers(client)
        ).status_code
        == 200
    )
    done = client.post(
        f"/review/api/records/{record_id}/enrol",
        json={"reviewer": "ann", "carrier": "acme"},
        headers=_headers(client),
    ).json()
    assert done["ok"] and done["label"] == "number_changed" and done["new"]
    with SampleLibrary(client.settings.samples_path) as library:
        assert [(s.label, s.carrier) for s in library.list()] == [("number_changed", "acme")]
    rng = np.random.default_rng(3)
    prompt = read_audio(REAL_PROMPT)
    call = np.concatenate([synth.cadenced(synth.spec("CN", "ringback"), 2.0), prompt])
    noisy = synth.g711_channel(synth.add_noise(call, 15.0, rng, reference=0.01), "alaw")
    classifier = Classifier(
        ClassifierConfig(model_path=None, asr_model=None, samples_path=str(client.settings.samples_path))
    )
    decision = classifier.classify_array(noisy, 8000)
    assert decision.label == "number_changed"
    assert any(e.channel == "fingerprint" and e.label == "number_changed" for e in decision.evidence)
    trained = client.post(
        f"/review/api/records/{record_id}/train", json={"reviewer": "ann"}, headers=_headers(client)
    )
    assert trained.status_code == 200
    rows = list(csv.DictReader(open(client.settings.training_manifest)))
    assert rows == [
        {
            "path": str(client.settings.audio_root / "real_prompt.wav"),
            "label": "number_changed",
            "carrier": "",
        }
    ]
    kinds = [a["kind"] for a in client.get(f"/review/api/records/{record_id}").json()["actions"]]
    assert kinds == ["enrol", "train"]


PROMPTS = (
    "/usr/share/asterisk/sounds/fr_CA_f_June/vm-leavemsg.wav",
    "/usr/share/asterisk/sounds/it_IT_m_Carlo/vm-nobodyavail.wav",
    "/usr/share/asterisk/sounds/ru_RU_f_IvrvoiceRU/vm-next.wav",
)
"""Real prompts no library holds (asterisk-core-sounds-{fr,it,ru}-wav)."""


@pytest.fixture(scope="module")
def unknown_prompts(tmp_path_factory) -> tuple[Path, Path, dict[str, str]]:
    """(folder, classify output, path -> prompt): four call-shaped copies of each prompt
    (ringback or silence first, then a line: noise, band-pass, codec) and a busy tone."""
    from benchmarks.discover import copies

    folder = tmp_path_factory.mktemp("unknown")
    rng = np.random.default_rng(8)
    truth = {}
    for k, prompt in enumerate(PROMPTS):
        for j, y in enumerate(copies(Path(prompt), 4, rng)):
            name = f"p{k}_{j}.wav"
            sf.write(folder / name, y, 8000, subtype="PCM_16")
            truth[name] = Path(prompt).stem
    sf.write(folder / "busy.wav", synth.cadenced(synth.spec("CN", "busy"), 4.0), 8000, subtype="PCM_16")
    out = folder / "out.jsonl"
    assert run_cli("classify", folder, "-o", out, "--no-asr").exit_code == 0
    return folder, out, truth


def test_discovery_groups_copies_of_the_same_unknown_prompt(unknown_prompts, tmp_path):
    from audio_classifier.review.discover import discover

    folder, out, truth = unknown_prompts
    records = [{**r, "path": Path(r["path"]).name} for r in _records(out)]
    found = discover(records, folder)
    assert ("busy.wav", "decided busy_tone") in found.skipped
    assert len(found.groups) == len(PROMPTS)
    for group in found.groups:
        prompts = {truth[found.paths[i]] for i in group.members}
        assert len(prompts) == 1 and len(group.members) >= 3, prompts
    # the command line gives the same groups
    result = run_cli("discover", out, "-o", tmp_path / "groups.json")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "groups.json").read_text())
    assert sorted(g["size"] for g in report["groups"]) == sorted(len(g.members) for g in found.groups)


def test_a_discovered_group_is_labelled_at_once(unknown_prompts, tmp_path):
    out = unknown_prompts[1]
    store = ReviewStore(tmp_path / "review.sqlite")
    store.load(out)
    settings = ReviewSettings(store=store)
    with TestClient(review_app(settings), base_url="http://127.0.0.1") as c:
        c.settings = settings
        groups = c.get("/review/api/groups").json()["groups"]
        assert len(groups) == len(PROMPTS)
        ids = [m["id"] for m in groups[0]["members"]]
        assert None not in ids
        body = {"ids": ids, "label": "unreachable", "reviewer": "ann"}
        assert c.post("/review/api/groups/verdict", json=body).status_code == 403  # no CSRF token
        done = c.post("/review/api/groups/verdict", json=body, headers=_headers(c)).json()
        assert done["labelled"] == len(ids)
    assert all(store.verdict(i) == "unreachable" for i in ids)


def test_the_commands_say_when_recordings_are_not_where_the_paths_point(batch, tmp_path):
    """Relative paths are as classify saw them: from elsewhere, without --audio-root, the
    review export and discover say so, and discover fails when it can read nothing."""
    out = batch[1]
    exported = run_cli("review", out, "--db", tmp_path / "r.sqlite", "--export", tmp_path / "x.csv")
    assert exported.exit_code == 0 and "no record has a verdict yet" in exported.output
    store = ReviewStore(tmp_path / "r.sqlite")
    first = store.page(Filters(), 0, 1)[1][0]
    store.correct(first["id"], first["label"], reviewer="ann")
    exported = run_cli("review", out, "--db", tmp_path / "r.sqlite", "--export", tmp_path / "x.csv")
    assert "relative paths were written as the output had them" in exported.output
    assert "for a --manifest run, the manifest's folder" in exported.output
    found = run_cli("discover", out)
    assert found.exit_code == 1 and "could not be read" in found.output
    assert run_cli("discover", out, "--audio-root", batch[0]).exit_code == 0


def test_evaluate_says_when_the_manifest_has_no_rows(tmp_path):
    manifest = tmp_path / "empty.csv"
    manifest.write_text("path,label\n")
    result = run_cli("evaluate", manifest, "--out-dir", tmp_path / "e", "--no-asr")
    assert result.exit_code != 0 and "no rows" in result.output


def test_a_parquet_output_is_reviewed_like_its_jsonl(batch, tmp_path):
    """``classify -o OUT.parquet`` (a folder of parts, as cluster runs write) loads into the
    review database with the same records, reasons and evidence as the JSONL output."""
    folder, out = batch
    parquet = tmp_path / "out.parquet"
    result = run_cli("classify", "--manifest", folder / "manifest.csv", "-o", parquet, "--no-asr")
    assert result.exit_code == 0, result.output
    assert list(parquet.glob("part-*.parquet"))
    from_jsonl, from_parquet = ReviewStore(tmp_path / "a.sqlite"), ReviewStore(tmp_path / "b.sqlite")
    assert from_jsonl.load(out) == from_parquet.load(parquet)

    def shown(store):
        return sorted(
            (i["path"], i["label"], i["confidence"], i["manifest_label"], tuple(i["reasons"]))
            for i in store.page(Filters(), 0, 200)[1]
        )

    assert shown(from_jsonl) == shown(from_parquet)
    record = next(r for r in read_output(parquet) if r["path"] == "real_prompt.wav")
    assert isinstance(record["evidence"], list) and record["evidence"][0]["channel"]
    empty = tmp_path / "empty.parquet"
    empty.mkdir()
    with pytest.raises(UsageError, match="without Parquet parts"):
        list(read_output(empty))


def test_parquet_parts_are_read_in_the_order_they_were_written():
    """A resumed run's parts (a later start time) come after the first run's, whatever the
    process ids; within a run, by part number."""
    from audio_classifier.review.store import _part_order

    written = [
        "part-99999-1700000000-run-00001.parquet",
        "part-99999-1700000000-run-00002.parquet",
        "part-123-1700000500-run-00001.parquet",
        "part-123-1700000500-end-00002.parquet",
    ]
    assert sorted(reversed(written), key=lambda n: _part_order(Path(n))) == written


def test_discovery_under_serve_runs_in_the_file_processes(unknown_prompts, tmp_path):
    """``serve --review``: discovery (minutes of landmarks on a large output) runs in the
    server's file processes, at their lowered priority, not in the process whose event loop
    and threads serve live calls; the page gets the same groups."""
    from audio_classifier.server.app import FILE_WORKER_NICENESS, ServerSettings, create_app

    out = unknown_prompts[1]
    store = ReviewStore(tmp_path / "review.sqlite")
    store.load(out)
    review = ReviewSettings(store=store)
    settings = ServerSettings(review=review, file_processes=1)
    app = create_app(lambda: Classifier(ClassifierConfig(asr_model=None, model_path=None)), settings)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        state = app.state.server
        assert state.file_pool is None  # no upload yet
        groups = c.get("/review/api/groups").json()["groups"]
        assert len(groups) == len(PROMPTS) and all(m["id"] is not None for g in groups for m in g["members"])
        assert state.file_pool is not None
        workers = list(state.file_pool._processes)
        assert workers and all(pid != os.getpid() for pid in workers)
        base = os.getpriority(os.PRIO_PROCESS, 0)
        assert all(os.getpriority(os.PRIO_PROCESS, pid) >= base + FILE_WORKER_NICENESS for pid in workers)
    assert review.offload is None  # the pool is gone with the server
