"""The service over real loopback sockets: every endpoint, auth, limits, malformed input,
concurrency. The server runs in a thread of the test process, started by the tests."""

import base64
import contextlib
import json
import socket
import struct
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from audio_classifier import Classifier, ClassifierConfig, g711, synth
from audio_classifier.client import stream
from audio_classifier.server import BackgroundServer, ServerSettings, create_app

from .conftest import FIXTURES

KEY = "test-key"


def pcm(x: np.ndarray) -> bytes:
    return (np.clip(x, -1, 1) * 32767).astype("<i2").tobytes()


BUSY = synth.cadenced(synth.spec("CN", "busy"), 4.0)
RINGBACK = synth.cadenced(synth.spec("CN", "ringback"), 3.0)


@pytest.fixture(scope="module")
def server(callbacks):
    settings = ServerSettings(api_keys=frozenset({KEY}), callback_url=callbacks.url, idle_timeout_s=5)
    app = create_app(lambda: Classifier(ClassifierConfig(asr_model=None)), settings)
    with BackgroundServer(app) as running:
        yield running


@pytest.fixture(scope="module")
def limited_as(callbacks):
    """AudioSocket with a short idle timeout, reporting to the callback."""
    settings = ServerSettings(callback_url=callbacks.url, idle_timeout_s=1.0)
    app = create_app(lambda: Classifier(ClassifierConfig(asr_model=None, model_path=None)), settings)
    with BackgroundServer(app) as running:
        yield running


@pytest.fixture(scope="module")
def limited():
    settings = ServerSettings(max_sessions=2, idle_timeout_s=1.0, max_frame_bytes=2000)
    app = create_app(
        lambda: Classifier(ClassifierConfig(asr_model=None, model_path=None, samples_path=None)), settings
    )
    with BackgroundServer(app, audiosocket=False) as running:
        yield running


def final(messages: list[dict]) -> dict:
    finals = [m for m in messages if m.get("type") == "decision" and m["final"]]
    assert len(finals) == 1, messages
    return finals[0]


def test_audio_frames_are_not_compressed(server):
    """The client offers permessage-deflate (websockets does by default); the server
    declines: audio does not compress, and inflating every 20 ms frame cost both sides CPU."""
    with connect(server.ws_url + "/v1/stream", additional_headers={"Authorization": f"Bearer {KEY}"}) as ws:
        assert ws.protocol.extensions == []
        ws.send(json.dumps({"sample_rate": 8000}))
        ws.send(pcm(BUSY[:8000]))
        ws.send(json.dumps({"type": "stop"}))
        assert any(json.loads(m)["type"] == "decision" for m in ws)


def test_health_ready_metrics(server):
    assert httpx.get(server.url + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(server.url + "/readyz")
    assert (
        ready.status_code == 200
        and "tone" in ready.json()["channels"]
        and "model" in ready.json()["channels"]
    )
    stream(server.ws_url, pcm(BUSY), api_key=KEY)
    text = httpx.get(server.url + "/metrics").text
    assert 'audio_classifier_sessions_total{transport="websocket"}' in text
    assert 'audio_classifier_decisions_total{label="busy_tone"}' in text
    assert "audio_classifier_chunk_processing_seconds_bucket" in text


def test_authentication(server):
    with pytest.raises(InvalidStatus):
        connect(server.ws_url + "/v1/stream").close()
    with pytest.raises(InvalidStatus):
        connect(server.ws_url + "/v1/stream", additional_headers={"Authorization": "Bearer wrong"}).close()
    assert final(stream(server.ws_url + "", pcm(BUSY), api_key=KEY))["label"] == "busy_tone"
    with connect(server.ws_url + f"/v1/stream?token={KEY}") as ws:  # clients that cannot set headers
        ws.send(json.dumps({"sample_rate": 8000}))
    with connect(server.ws_url + "/v1/stream", additional_headers={"X-API-Key": KEY}) as ws:
        ws.send(json.dumps({"sample_rate": 8000}))
    assert httpx.post(server.url + "/v1/classify", content=b"x").status_code == 401


def test_stream_interim_then_final(server):
    messages = stream(
        server.ws_url, pcm(np.concatenate([RINGBACK, BUSY])), api_key=KEY, metadata={"call_id": "c1"}
    )
    decision = final(messages)
    assert decision["label"] == "busy_tone" and decision["call_id"] == "c1"
    assert any(m["type"] == "decision" and not m["final"] for m in messages)
    assert decision["decided_at_s"] < 3.0 + 2.5


@pytest.mark.parametrize("encoding", ["mulaw", "alaw"])
def test_g711_streams(server, encoding):
    data = g711.encode(BUSY, encoding).tobytes()
    assert final(stream(server.ws_url, data, encoding=encoding, api_key=KEY))["label"] == "busy_tone"


def test_freeswitch_and_jambonz_metadata(server):
    # mod_audio_fork: the dial plan's own metadata, audio.drachtio.org subprotocol, 8 kHz PCM
    with connect(
        server.ws_url + "/v1/stream",
        additional_headers={"X-API-Key": KEY},
        subprotocols=["audio.drachtio.org"],
    ) as ws:
        assert ws.subprotocol == "audio.drachtio.org"
        ws.send(json.dumps({"uuid": "fs-uuid-1", "campaign": "x"}))
        data = pcm(BUSY)
        for i in range(0, len(data), 320):
            ws.send(data[i : i + 320])
        ws.send(json.dumps({"type": "stop"}))
        got = [json.loads(m) for m in ws]
    assert final(got)["label"] == "busy_tone" and final(got)["call_id"] == "fs-uuid-1"
    # jambonz listen: sampleRate, callSid, nested metadata, 16 kHz
    busy16 = synth.cadenced(synth.spec("NANP", "busy"), 4.0, sample_rate=16000)
    got = stream(
        server.ws_url,
        pcm(busy16),
        sample_rate=16000,
        api_key=KEY,
        metadata={"sampleRate": 16000, "callSid": "jb-1", "mixType": "mono", "metadata": {"number": "1555"}},
    )
    assert (
        final(got)["label"] == "busy_tone"
        and final(got)["call_id"] == "jb-1"
        and final(got)["number"] == "1555"
    )


def test_close_on_final(server):
    with connect(server.ws_url + "/v1/stream", additional_headers={"X-API-Key": KEY}) as ws:
        ws.send(json.dumps({"sample_rate": 8000, "close_on_final": True, "interim": False}))
        data = pcm(np.concatenate([BUSY, BUSY]))
        got = []
        try:
            for i in range(0, len(data), 320):
                ws.send(data[i : i + 320])
                time.sleep(0.001)
        except ConnectionClosed:
            pass
        got = [json.loads(m) for m in ws]
        assert ws.close_code == 1000
    assert [m["final"] for m in got] == [True] and got[0]["decided_at_s"] < 4.0


def test_post_classify(server):
    path = FIXTURES / "tones" / "sit_vc.flac"
    files = {"file": (path.name, path.read_bytes(), "audio/flac")}
    r = httpx.post(
        server.url + "/v1/classify", files=files, data={"sip_status": "404"}, headers={"X-API-Key": KEY}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["label"] == "vacant" and any(e["channel"] == "signalling" for e in body["evidence"])
    raw = httpx.post(
        server.url + "/v1/classify?q850_cause=17",
        content=(FIXTURES / "tones" / "uk_busy.wav").read_bytes(),
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert raw.status_code == 200 and raw.json()["label"] == "busy_tone"
    bad = httpx.post(
        server.url + "/v1/classify", content=b"not audio at all" * 10, headers={"X-API-Key": KEY}
    )
    assert bad.status_code == 400 and bad.json()["code"] == "bad_audio"
    hints = httpx.post(server.url + "/v1/classify?sip_status=busy", content=b"x", headers={"X-API-Key": KEY})
    assert hints.status_code == 400 and hints.json()["code"] == "bad_hints"


def _raw_ws(server, first, *frames_, key=KEY):
    with connect(server.ws_url + "/v1/stream", additional_headers={"X-API-Key": key}) as ws:
        ws.send(first)
        for f in frames_:
            try:
                ws.send(f)
            except ConnectionClosed:
                break
        messages = []
        try:
            for m in ws:
                messages.append(json.loads(m))
        except ConnectionClosed:
            pass
        return messages, ws.close_code


@pytest.mark.parametrize(
    "first,frames_,code,close",
    [
        ("{not json", [], "bad_json", 1007),
        (json.dumps({"sample_rate": 8000, "encoding": "opus"}), [], "bad_encoding", 1007),
        (json.dumps({"sample_rate": 7}), [], "bad_encoding", 1007),
        (json.dumps([1, 2]), [], "bad_metadata", 1007),
        (b"\x00\x01binary first", [], "bad_metadata", 1007),
        (json.dumps({"sample_rate": 8000}), ["hello"], "bad_json", 1007),
        (json.dumps({"sample_rate": 8000}), [json.dumps({"type": "dance"})], "bad_message", 1007),
        (json.dumps({"sample_rate": 8000, "encoding": "float32"}), [], "bad_encoding", 1007),
    ],
)
def test_malformed_messages_get_clear_errors(server, first, frames_, code, close):
    messages, close_code = _raw_ws(server, first, *frames_)
    errors = [m for m in messages if m["type"] == "error"]
    assert errors and errors[0]["code"] == code and errors[0]["error"], messages
    assert close_code == close
    assert httpx.get(server.url + "/healthz").status_code == 200  # the service is unharmed


def test_oversize_frame_and_abrupt_disconnect(limited):
    messages, code = _raw_ws(limited, json.dumps({"sample_rate": 8000}), b"\x00" * 5000, key=None)
    assert messages[-1]["code"] == "frame_too_large" and code == 1009
    sock = socket.create_connection(("127.0.0.1", limited.port))  # a client that vanishes mid-stream
    with connect(limited.ws_url + "/v1/stream") as ws:
        ws.send(json.dumps({"sample_rate": 8000}))
        ws.send(pcm(BUSY[:800]))
        ws.socket.close()
    sock.close()
    time.sleep(0.3)
    assert final(stream(limited.ws_url, pcm(BUSY)))["label"] == "busy_tone"


def test_session_limit_and_idle_timeout(limited):
    stack = contextlib.ExitStack()
    held = [stack.enter_context(connect(limited.ws_url + "/v1/stream")) for _ in range(2)]
    for ws in held:
        ws.send(json.dumps({"sample_rate": 8000}))
        ws.send(pcm(BUSY[:160]))  # one 20 ms frame, under this server's 2,000-byte frame limit
    time.sleep(0.2)
    with connect(limited.ws_url + "/v1/stream") as third:
        message = json.loads(third.recv(timeout=5))
        assert message["code"] == "busy"
        with pytest.raises(ConnectionClosed):
            third.recv(timeout=5)
        assert third.close_code == 1013
    assert httpx.get(limited.url + "/readyz").status_code == 503
    for ws in held:  # idle for longer than 1 s: the server ends them with their decision
        got = json.loads(ws.recv(timeout=5))
        assert got["type"] == "decision" and got["final"] and got["ended"] == "idle timeout"
    stack.close()
    time.sleep(0.2)
    assert httpx.get(limited.url + "/readyz").status_code == 200


def test_many_concurrent_sessions(server):
    calls = [pcm(BUSY), pcm(np.concatenate([RINGBACK[:8000], BUSY]))] * 15
    with ThreadPoolExecutor(30) as pool:
        results = list(pool.map(lambda audio: final(stream(server.ws_url, audio, api_key=KEY)), calls))
    assert [r["label"] for r in results] == ["busy_tone"] * 30


def _audiosocket_frame(kind: int, payload: bytes) -> bytes:
    return struct.pack(">BH", kind, len(payload)) + payload


def test_audiosocket_call_and_callback(server, callbacks):
    before = len(callbacks.received)
    call_id = uuid.uuid4()
    with socket.create_connection(("127.0.0.1", server.audiosocket_port)) as sock:
        sock.sendall(_audiosocket_frame(0x01, call_id.bytes))
        data = pcm(BUSY)
        for i in range(0, len(data), 320):
            sock.sendall(_audiosocket_frame(0x10, data[i : i + 320]))
        sock.sendall(_audiosocket_frame(0x03, b"5"))  # a DTMF digit is ignored
        sock.sendall(_audiosocket_frame(0x00, b""))
    got = callbacks.wait(before + 1)[before:]
    assert len(got) == 1 and got[0]["label"] == "busy_tone"
    assert got[0]["call_id"] == call_id.hex and got[0]["transport"] == "audiosocket"


def test_an_idle_audiosocket_call_ends_by_the_idle_timeout_and_is_reported(limited_as, callbacks):
    """Asterisk goes quiet without a hang-up: the server ends the call after the idle
    timeout, closes the connection and reports the decision made so far, once."""
    before = len(callbacks.received)
    with socket.create_connection(("127.0.0.1", limited_as.audiosocket_port)) as sock:
        sock.sendall(_audiosocket_frame(0x01, uuid.uuid4().bytes))
        quiet = bytes(16000)  # a second of silence: nothing final before the end
        for i in range(0, len(quiet), 320):
            sock.sendall(_audiosocket_frame(0x10, quiet[i : i + 320]))
        sock.settimeout(10)
        started = time.monotonic()
        assert sock.recv(1) == b""  # closed by the server
        assert time.monotonic() - started >= 0.5
    got = callbacks.wait(before + 1)[before:]
    time.sleep(0.5)  # a second report would have come by now
    assert len(callbacks.received) == before + 1
    assert got[0]["final"] and got[0]["transport"] == "audiosocket" and got[0]["ended"] == "idle timeout"


def test_audiosocket_truncated_frame_and_16k(server, callbacks):
    with socket.create_connection(("127.0.0.1", server.audiosocket_port)) as sock:
        sock.sendall(_audiosocket_frame(0x01, uuid.uuid4().bytes))
        sock.sendall(struct.pack(">BH", 0x10, 320) + b"\x00" * 100)  # then the line drops
    time.sleep(0.3)
    assert "truncated_frame" in httpx.get(server.url + "/metrics").text
    before = len(callbacks.received)
    busy16 = pcm(synth.cadenced(synth.spec("ITU", "busy"), 4.0, sample_rate=16000))
    with socket.create_connection(("127.0.0.1", server.audiosocket_port)) as sock:
        sock.sendall(_audiosocket_frame(0x01, uuid.uuid4().bytes))
        for i in range(0, len(busy16), 640):
            sock.sendall(_audiosocket_frame(0x12, busy16[i : i + 640]))  # 16 kHz frames
        sock.sendall(_audiosocket_frame(0x00, b""))
    assert callbacks.wait(before + 1)[before:][0]["label"] == "busy_tone"


def test_twilio_media_stream(server, callbacks):
    before = len(callbacks.received)
    payload = g711.encode(BUSY, "mulaw").tobytes()
    with connect(server.ws_url + "/v1/twilio", additional_headers={"X-API-Key": KEY}) as ws:
        ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        ws.send(
            json.dumps(
                {
                    "event": "start",
                    "start": {
                        "streamSid": "MZ1",
                        "callSid": "CA1",
                        "customParameters": {"send_decisions": "true"},
                        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                    },
                }
            )
        )
        for i in range(0, len(payload), 160):
            ws.send(
                json.dumps(
                    {
                        "event": "media",
                        "media": {
                            "track": "inbound",
                            "payload": base64.b64encode(payload[i : i + 160]).decode(),
                        },
                    }
                )
            )
        ws.send(json.dumps({"event": "stop"}))
        got = [json.loads(m) for m in ws]
    assert final(got)["label"] == "busy_tone" and final(got)["call_id"] == "CA1"
    assert callbacks.wait(before + 1)[before:][0]["transport"] == "twilio"
    with connect(server.ws_url + "/v1/twilio", additional_headers={"X-API-Key": KEY}) as ws:
        ws.send(json.dumps({"event": "media", "media": {"payload": "AAAA"}}))
        assert json.loads(ws.recv(timeout=5))["code"] == "bad_message"


def test_reload_samples(server):
    r = httpx.post(server.url + "/v1/admin/reload-samples", headers={"X-API-Key": KEY})
    assert r.status_code == 200 and r.json()["reloaded"]["fingerprint"] > 0


def test_shutdown_ends_open_streams_with_their_decision():
    app = create_app(lambda: Classifier(ClassifierConfig(asr_model=None, model_path=None, samples_path=None)))
    server = BackgroundServer(app, audiosocket=False).start()
    with connect(server.ws_url + "/v1/stream") as ws:
        ws.send(json.dumps({"sample_rate": 8000, "interim": False}))
        frames_ = [pcm(RINGBACK)[i : i + 320] for i in range(0, len(pcm(RINGBACK)), 320)]
        for frame in frames_[:50]:
            ws.send(frame)
        stopper = threading.Thread(target=server.stop)
        stopper.start()
        got = []
        try:
            for frame in frames_[50:]:
                ws.send(frame)
                time.sleep(0.005)
        except ConnectionClosed:
            pass
        try:
            got = [json.loads(m) for m in ws]
        except ConnectionClosed:
            pass
        stopper.join(timeout=30)
        assert got and got[-1]["type"] == "decision" and got[-1]["final"]
        assert got[-1]["ended"] == "server shutting down" and ws.close_code == 1001
