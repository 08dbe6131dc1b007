"""The service against hostile and broken clients, over real loopback sockets: malformed
metadata, oversize and endless uploads, frames and sessions past their limits, reset
connections, forged log lines, keys in URLs, slow and silent connections, a busy port.
Each gets its error code, no traceback, bounded memory, and leaves other clients alone."""

import base64
import contextlib
import json
import logging
import os
import select
import socket
import struct
import subprocess
import sys
import time
import uuid

import httpx
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from audio_classifier import Classifier, ClassifierConfig, synth
from audio_classifier.client import stream
from audio_classifier.server import BackgroundServer, ServerSettings, create_app
from audio_classifier.server.app import LogSanitiser
from audio_classifier.server.runner import PortInUseError, make_socket

from .test_server import _audiosocket_frame, final, pcm

BUSY = synth.cadenced(synth.spec("CN", "busy"), 4.0)
TONES_ONLY = ClassifierConfig(asr_model=None, model_path=None, samples_path=None)


class Tracebacks(logging.Handler):
    """Every log record that carries a traceback, from any thread."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        if record.exc_info:
            self.records.append(record)


@pytest.fixture()
def tracebacks():
    handler = Tracebacks()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture(scope="module")
def hardened(callbacks):
    settings = ServerSettings(
        api_keys=frozenset({"k"}),
        callback_url=callbacks.url,
        idle_timeout_s=3.0,
        max_session_s=1.5,
        max_frame_bytes=4000,
        max_upload_bytes=1_000_000,
        max_sessions=4,
        audiosocket_max_sessions=2,
        header_timeout_s=0.5,
    )
    with BackgroundServer(create_app(lambda: Classifier(TONES_ONLY), settings)) as running:
        yield running


KEY = {"X-API-Key": "k"}


def _ws_exchange(url: str, *messages) -> tuple[list[dict], int | None]:
    with connect(url, additional_headers=KEY, max_size=None) as ws:
        with contextlib.suppress(ConnectionClosed):
            for message in messages:
                ws.send(message)
        got = []
        with contextlib.suppress(ConnectionClosed):
            for m in ws:
                got.append(json.loads(m))
        return got, ws.close_code


DEEP = "[" * 1500 + "]" * 1500  # past json's recursion limit, within the frame limit
TWILIO_START = {"event": "start", "start": {"callSid": "CA", "mediaFormat": {"encoding": "audio/x-mulaw"}}}


@pytest.mark.parametrize(
    "first",
    [
        '{"sample_rate": Infinity}',
        '{"sample_rate": 1e400}',
        '{"sample_rate": 8000, "channels": 1e400}',
        '{"sample_rate": 8000, "channel": -Infinity}',
        '{"sample_rate": 8000, "sip_status": 1e400}',
        '{"sample_rate": 8000, "q850_cause": "1e400"}',
        DEEP,
        '{"a":' * 1200 + "1" + "}" * 1200,
        '{"sample_rate": [8000]}',
        '{"sample_rate": {"x": 1}, "encoding": ["pcm"]}',
    ],
    ids=["inf", "1e400", "channels", "channel", "sip", "q850", "deep", "nested", "list", "dict"],
)
def test_bad_metadata_gets_an_error_code_not_a_traceback(hardened, tracebacks, first):
    got, code = _ws_exchange(hardened.ws_url + "/v1/stream", first)
    assert got and got[-1]["type"] == "error" and got[-1]["code"].startswith("bad_"), got
    assert code == 1007
    assert not tracebacks.records


@pytest.mark.parametrize(
    "event",
    [
        {"event": "start", "start": "x"},
        {"event": "start", "start": {"mediaFormat": "x"}},
        {"event": "start", "start": {"customParameters": [1]}},
        {"event": "start", "start": {"mediaFormat": {"sampleRate": 1e400}}},
        {"event": "start", "start": {"mediaFormat": {"sampleRate": {"a": 1}}}},
        {"event": ["start"]},
        ["media"],
    ],
)
def test_twilio_fields_of_the_wrong_type(hardened, tracebacks, event):
    got, code = _ws_exchange(hardened.ws_url + "/v1/twilio", json.dumps(event))
    assert got and got[-1]["code"].startswith("bad_") and code == 1007, got
    assert not tracebacks.records


@pytest.mark.parametrize("media", ["x", {"payload": 5}, {"payload": ["AAAA"]}, {"payload": "not base64!"}])
def test_twilio_media_of_the_wrong_type(hardened, tracebacks, media):
    got, code = _ws_exchange(
        hardened.ws_url + "/v1/twilio",
        json.dumps(TWILIO_START),
        json.dumps({"event": "media", "media": media}),
    )
    assert got[-1]["code"] == "bad_payload" and code == 1007
    assert not tracebacks.records
    metrics = httpx.get(hardened.url + "/metrics").text
    assert 'code="bad_payload"' in metrics  # counted


def test_overflowing_hints_on_post_are_a_400(hardened, tracebacks):
    wav = pcm(BUSY)
    for query in ("sip_status=1e400", "q850_cause=inf", "sip_status=-Infinity"):
        r = httpx.post(f"{hardened.url}/v1/classify?{query}", content=wav, headers=KEY)
        assert r.status_code == 400 and r.json()["code"] == "bad_hints", r.text
    form = httpx.post(
        hardened.url + "/v1/classify",
        files={"file": ("a.wav", b"x")},
        data={"sip_status": "1e400"},
        headers=KEY,
    )
    assert form.status_code == 400 and form.json()["code"] == "bad_hints"
    assert not tracebacks.records


def test_an_unexpected_failure_is_an_internal_error_code(callbacks, tracebacks):
    class Broken(Classifier):
        def open_session(self, *args, **kwargs):
            raise RuntimeError("a bug")

    app = create_app(lambda: Broken(TONES_ONLY), ServerSettings())
    with BackgroundServer(app, audiosocket=False) as running:
        got, code = _ws_exchange(running.ws_url + "/v1/stream", json.dumps({"sample_rate": 8000}))
        assert got[-1]["code"] == "internal_error" and "traceback" not in json.dumps(got).lower()
        assert code == 1011
        assert 'code="internal_error"' in httpx.get(running.url + "/metrics").text
        assert httpx.get(running.url + "/healthz").status_code == 200
    assert not tracebacks.records
    assert any(
        "internal error on a client message (RuntimeError: a bug)" in line for line in tracebacks.lines
    )


def _chunks(total: int, sent: list[int]):
    block = b"\x00" * 65536
    while sent[0] < total:
        sent[0] += len(block)
        yield block


def test_a_chunked_upload_is_refused_while_it_is_read(hardened):
    sent = [0]
    with contextlib.suppress(httpx.TransportError):
        r = httpx.post(
            hardened.url + "/v1/classify", content=_chunks(50_000_000, sent), headers=KEY, timeout=30
        )
        assert r.status_code == 413 and r.json()["code"] == "too_large"
    assert sent[0] < 20_000_000  # refused near the 1 MB limit, not after reading 50 MB


def test_a_multipart_upload_is_refused_while_it_is_read(hardened):
    big = b"\x00" * 3_000_000
    r = httpx.post(hardened.url + "/v1/classify", files={"file": ("a.wav", big)}, headers=KEY)
    assert r.status_code == 413 and r.json()["code"] == "too_large"
    ok = httpx.post(hardened.url + "/v1/classify", files={"file": ("busy.ul", _mulaw(BUSY))}, headers=KEY)
    assert ok.status_code == 200 and ok.json()["label"] == "busy_tone"  # headerless, by its name


def _mulaw(x: np.ndarray) -> bytes:
    from audio_classifier import g711

    return g711.encode(x, "mulaw").tobytes()


def test_websocket_messages_are_limited_by_the_protocol_layer(hardened):
    with connect(hardened.ws_url + "/v1/stream", additional_headers=KEY) as ws:
        ws.send(json.dumps({"sample_rate": 8000}))
        with contextlib.suppress(ConnectionClosed):
            ws.send(b"\x00" * 1_000_000)  # over ws_max_size: never buffered whole
            ws.recv(timeout=5)
        assert ws.close_code == 1009
    got, code = _ws_exchange(
        hardened.ws_url + "/v1/stream", json.dumps({"sample_rate": 8000}), b"\x00" * 5000
    )
    assert got[-1]["code"] == "frame_too_large" and code == 1009  # over the app's own frame limit
    _, code = _ws_exchange(hardened.ws_url + "/v1/stream", '{"a": "' + "x" * 100_000 + '"}')
    assert code == 1009  # metadata too, whatever it holds


def test_twilio_frames_and_session_time_are_limited(hardened, callbacks):
    big = base64.b64encode(b"\xff" * 5000).decode()  # a 5,000-byte frame, over the 4,000 limit
    got, _ = _ws_exchange(
        hardened.ws_url + "/v1/twilio",
        json.dumps(TWILIO_START),
        json.dumps({"event": "media", "media": {"payload": big}}),
    )
    assert got[-1]["code"] == "frame_too_large"
    quiet = base64.b64encode(b"\xff" * 160).decode()  # mu-law silence, 20 ms
    before = len(callbacks.received)
    started = time.monotonic()
    with connect(hardened.ws_url + "/v1/twilio", additional_headers=KEY) as ws:
        ws.send(json.dumps(TWILIO_START))
        with pytest.raises(ConnectionClosed):
            for _ in range(400):  # 8 s of audio, sent over 4 s: past the 1.5 s session limit
                ws.send(json.dumps({"event": "media", "media": {"payload": quiet}}))
                time.sleep(0.01)
            ws.recv(timeout=5)
    assert time.monotonic() - started < 3.5
    assert callbacks.wait(before + 1)[before:][0]["call_id"] == "CA"  # its decision is still reported


def test_audiosocket_has_its_own_pool(hardened):
    held = [socket.create_connection(("127.0.0.1", hardened.audiosocket_port)) for _ in range(2)]
    time.sleep(0.2)
    third = socket.create_connection(("127.0.0.1", hardened.audiosocket_port))
    third.settimeout(3)
    assert third.recv(10) == b""  # refused: AudioSocket's pool is full
    assert httpx.get(hardened.url + "/readyz").status_code == 200  # HTTP clients do not see it
    assert final(stream(hardened.ws_url, pcm(BUSY[:8000]), api_key="k"))["label"]
    for sock in (*held, third):
        sock.close()


def test_audiosocket_allow_list(callbacks):
    settings = ServerSettings(audiosocket_allow=frozenset({"10.9.8.7"}))
    with BackgroundServer(create_app(lambda: Classifier(TONES_ONLY), settings)) as running:
        sock = socket.create_connection(("127.0.0.1", running.audiosocket_port))
        sock.settimeout(3)
        assert sock.recv(10) == b""
        sock.close()
        assert 'code="not_allowed"' in httpx.get(running.url + "/metrics").text


def test_dtmf_does_not_keep_a_call_past_its_time(hardened):
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", hardened.audiosocket_port)) as sock:
        sock.sendall(_audiosocket_frame(0x01, uuid.uuid4().bytes))
        with contextlib.suppress(OSError):
            for _ in range(50):  # 5 s of DTMF, no audio
                sock.sendall(_audiosocket_frame(0x03, b"1"))
                time.sleep(0.1)
        sock.settimeout(5)
        with contextlib.suppress(OSError):
            while sock.recv(100):
                pass
    assert time.monotonic() - started < 3.5  # ended at the 1.5 s limit


def test_a_reset_audiosocket_call_still_reports_its_decision(hardened, callbacks, tracebacks):
    before = len(callbacks.received)
    call_id = uuid.uuid4()
    sock = socket.create_connection(("127.0.0.1", hardened.audiosocket_port))
    sock.sendall(_audiosocket_frame(0x01, call_id.bytes))
    data = pcm(BUSY[:4000])
    for i in range(0, len(data), 320):
        sock.sendall(_audiosocket_frame(0x10, data[i : i + 320]))
    time.sleep(0.5)  # the call is under way (a reset discards what the server has not read)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # a TCP reset
    got = callbacks.wait(before + 1)[before:]
    assert got and got[0]["call_id"] == call_id.hex and got[0]["transport"] == "audiosocket"
    assert not tracebacks.records


def test_a_forged_uuid_and_forged_log_lines(hardened, callbacks, tracebacks):
    with socket.create_connection(("127.0.0.1", hardened.audiosocket_port)) as sock:
        sock.sendall(_audiosocket_frame(0x01, b"x\n2026-12-07 INFO FORGED admin login"))
        sock.settimeout(3)
        assert sock.recv(10) == b""
    assert 'code="bad_uuid"' in httpx.get(hardened.url + "/metrics").text
    before = len(callbacks.received)
    forged = {"event": "start", "start": {"callSid": "CA\nFORGED line", "mediaFormat": {}}}
    _ws_exchange(hardened.ws_url + "/v1/twilio", json.dumps(forged), json.dumps({"event": "stop"}))
    callbacks.wait(before + 1)
    assert not any("\n" in line for line in tracebacks.lines if "audio_classifier" in line or "CA" in line)
    assert any("CA\\x0aFORGED line" in line for line in tracebacks.lines)


def test_keys_in_urls_never_reach_the_logs():
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "POST", "/v1/classify?token=sekret&x=1", "1.1", 200), None,
    )  # fmt: skip
    create_app(lambda: Classifier(TONES_ONLY))  # installs the filters
    assert any(isinstance(f, LogSanitiser) for f in logging.getLogger("uvicorn.access").filters)
    logging.getLogger("uvicorn.access").filter(record)
    assert "sekret" not in record.getMessage() and "token=<redacted>&x=1" in record.getMessage()
    from uvicorn.logging import AccessFormatter  # it unpacks the five arguments itself

    line = AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False).format(
        record
    )
    assert "token=<redacted>&x=1" in line and "sekret" not in line
    forged = logging.LogRecord(
        "uvicorn.access", logging.INFO, "", 0, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/x\n2026 FORGED", "1.1", 404), None,
    )  # fmt: skip
    logging.getLogger("uvicorn.access").filter(forged)
    assert "\n" not in AccessFormatter("%(request_line)s", use_colors=False).format(forged)


def test_slow_and_silent_connections_are_cut_off(hardened):
    silent = socket.create_connection(("127.0.0.1", hardened.port))
    dripping = socket.create_connection(("127.0.0.1", hardened.port))
    started = time.monotonic()
    with contextlib.suppress(OSError):
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 100:
            dripping.send(bytes([byte]))
            time.sleep(0.05)
    for sock in (silent, dripping):
        sock.settimeout(3)
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(100) == b""
        sock.close()
    assert time.monotonic() - started < 6
    with httpx.Client() as client:  # a keep-alive client in time is served, twice
        assert client.get(hardened.url + "/healthz").status_code == 200
        assert client.get(hardened.url + "/healthz").status_code == 200


def test_docs_are_off_unless_asked():
    with BackgroundServer(create_app(lambda: Classifier(TONES_ONLY)), audiosocket=False) as running:
        assert httpx.get(running.url + "/docs").status_code == 404
        assert httpx.get(running.url + "/openapi.json").status_code == 404
    app = create_app(lambda: Classifier(TONES_ONLY), ServerSettings(docs=True))
    with BackgroundServer(app, audiosocket=False) as running:
        assert httpx.get(running.url + "/openapi.json").status_code == 200


def test_a_port_in_use_is_a_clear_error():
    holder = make_socket("127.0.0.1", 0)
    port = holder.getsockname()[1]
    with pytest.raises(PortInUseError, match=f"port {port} on 127.0.0.1 is in use"):
        make_socket("127.0.0.1", port)
    command = f"{sys.executable} -m audio_classifier.cli serve --port {port} --no-model --no-samples --no-asr"
    done = subprocess.run(command.split(), capture_output=True, text=True, timeout=120)
    holder.close()
    assert done.returncode == 1 and f"Error: port {port} on 127.0.0.1 is in use" in done.stderr
    assert "Traceback" not in done.stderr


def test_files_are_classified_in_processes_of_lower_priority(hardened):
    """Uploads run in their own process in Linux's idle scheduling class (and niced): they
    cannot starve live calls."""
    r = httpx.post(hardened.url + "/v1/classify", files={"file": ("busy.ul", _mulaw(BUSY))}, headers=KEY)
    assert r.status_code == 200 and r.json()["label"] == "busy_tone"
    niceness, policy = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
            cmdline = open(f"/proc/{entry}/cmdline", "rb").read()
        except OSError:
            continue
        if int(stat[1]) == os.getpid() and b"spawn_main" in cmdline:  # not the resource tracker
            for tid in os.listdir(f"/proc/{entry}/task"):  # every thread: Linux sets them one by one
                task = open(f"/proc/{entry}/task/{tid}/stat").read().rsplit(")", 1)[1].split()
                niceness[int(tid)] = int(task[16])
                policy[int(tid)] = os.sched_getscheduler(int(tid))
    assert len(niceness) > 1 and set(niceness.values()) == {os.nice(0) + 10}, niceness
    assert set(policy.values()) == {os.SCHED_IDLE}, policy


def test_headerless_audio_over_http_says_its_encoding(hardened):
    body = _mulaw(BUSY)
    plain = httpx.post(hardened.url + "/v1/classify", content=body, headers=KEY)
    assert plain.status_code == 400 and plain.json()["code"] == "bad_audio"
    message = plain.json()["error"]
    assert "?encoding=mulaw" in message and "/tmp" not in message and ".audio" not in message
    said = httpx.post(
        hardened.url + "/v1/classify?encoding=mulaw&sample_rate=8000", content=body, headers=KEY
    )
    assert said.status_code == 200 and said.json()["label"] == "busy_tone"
    for query in ("encoding=opus", "encoding=mulaw&sample_rate=fast", "encoding=mulaw&sample_rate=7"):
        bad = httpx.post(f"{hardened.url}/v1/classify?{query}", content=body, headers=KEY)
        assert bad.status_code == 400 and bad.json()["code"] == "bad_encoding", query


def test_serve_says_where_it_listens(tmp_path):
    """The sockets are bound before uvicorn starts, so uvicorn does not say where: the
    server does, once it is ready; and it says once that it has no speech model."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "audio_classifier.cli", "serve", "--port", str(port)]
    command += ["--audiosocket-port", "0", "--no-model", "--no-samples"]
    env = {**os.environ, "AUDIO_CLASSIFIER_CACHE": str(tmp_path)}  # no speech model fetched
    env.pop("AUDIO_CLASSIFIER_ASR_MODEL", None)
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline, seen = time.monotonic() + 120, []
        while time.monotonic() < deadline and not any("serving on" in line for line in seen):
            readable, _, _ = select.select([server.stderr], [], [], 1.0)
            if readable:
                line = server.stderr.readline()
                if not line:
                    break
                seen.append(line)
        line = next((line for line in seen if "serving on" in line), "")
        assert f"serving on http://127.0.0.1:{port} (WebSocket ws://127.0.0.1:{port}/v1/stream)" in line, seen
        assert "AudioSocket on 127.0.0.1:" in line
        assert sum("no speech model" in line for line in seen) == 1, seen
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_uploads_beyond_the_limit_are_told_to_come_back_and_the_slot_is_given_back():
    """Uploads hold connections, and connections beyond the live sessions are few: past
    ``max_uploads`` an upload gets 503 ``busy`` at once; a finished one frees its slot."""
    settings = ServerSettings(max_uploads=1, upload_idle_timeout_s=30.0)
    with BackgroundServer(create_app(lambda: Classifier(TONES_ONLY), settings), audiosocket=False) as running:
        body = _mulaw(BUSY)
        head = (
            f"POST /v1/classify?encoding=mulaw HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Length: {len(body)}\r\nContent-Type: application/octet-stream\r\n\r\n"
        ).encode()
        with socket.create_connection(("127.0.0.1", running.port)) as slow:
            slow.sendall(head + body[:100])  # an upload in progress: the one slot is taken
            time.sleep(0.3)
            busy = httpx.post(running.url + "/v1/classify?encoding=mulaw", content=body)
            assert busy.status_code == 503 and busy.json()["code"] == "busy"
            assert busy.headers["Retry-After"].isdigit()
            slow.sendall(body[100:])
            slow.settimeout(60)
            answer = b""
            while b"busy_tone" not in answer and (chunk := slow.recv(65536)):
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200") and b"busy_tone" in answer
        again = httpx.post(running.url + "/v1/classify?encoding=mulaw", content=body, timeout=60)
        assert again.status_code == 200 and again.json()["label"] == "busy_tone"
        assert 'code="busy"' in httpx.get(running.url + "/metrics").text


def test_a_refused_idle_class_keeps_the_nice_value_and_warns_once():
    """Some sandboxes refuse SCHED_IDLE: a file process then stays niced and says so once,
    instead of failing the pool's start (and with it every upload). Run in a process of its
    own: it lowers the priority of the process it runs in."""
    code = (
        "import logging, os, threading\n"
        "logging.basicConfig(level=logging.WARNING)\n"
        "def refuse(*args):\n"
        "    raise PermissionError(1, 'Operation not permitted')\n"
        "os.sched_setscheduler = refuse\n"
        "from audio_classifier.server.app import _lower_priority\n"
        "threading.Thread(target=threading.Event().wait, daemon=True).start()\n"
        "before = os.getpriority(os.PRIO_PROCESS, 0)\n"
        "_lower_priority()\n"
        "print(os.getpriority(os.PRIO_PROCESS, 0) - before)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["10"]
    assert done.stderr.count("file processes keep a higher CPU priority") == 1, done.stderr
