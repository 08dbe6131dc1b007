"""'models fetch' against a local HTTP server: good, corrupted, interrupted, wrong checksum."""

import hashlib
import http.server
import io
import threading
import zipfile

import pytest

from audio_classifier.errors import ModelError
from audio_classifier.model_store import fetch, resolve_asr_model


def model_zip(name: str = "vosk-model-test") -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{name}/am/final.mdl", b"\x00" * 20000)
        archive.writestr(f"{name}/conf/mfcc.conf", "--sample-frequency=16000\n")
        archive.writestr(f"{name}/graph/words.txt", "a 1\n")
    return buffer.getvalue()


class Server:
    """Serves files from a dict, honours Range, and can cut a response short."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.cut_after: int | None = None  # bytes to send before dropping the connection
        self.ranges: list[str] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                if "Range" in self.headers:
                    server.ranges.append(self.headers["Range"])
                    start = int(self.headers["Range"].split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                part = body[start:]
                self.send_header("Content-Length", str(len(part)))
                self.end_headers()
                if server.cut_after is not None:
                    self.wfile.write(part[: server.cut_after])
                    self.wfile.flush()
                    server.cut_after = None
                    self.connection.close()
                    return
                self.wfile.write(part)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture()
def server():
    s = Server()
    yield s
    s.close()


def test_good_archive_installs_atomically(server, tmp_path):
    data = model_zip()
    server.files["/m.zip"] = data
    path = fetch(
        "vosk-model-test", url=server.url + "/m.zip", sha256=hashlib.sha256(data).hexdigest(), cache=tmp_path
    )
    assert path == tmp_path / "models" / "vosk-model-test"
    assert (path / "am" / "final.mdl").stat().st_size == 20000
    assert not list((tmp_path / "models").glob(".unpack-*"))
    assert not list((tmp_path / "downloads").iterdir())  # the archive is removed after unpacking
    # a second fetch finds it installed and downloads nothing
    server.files.clear()
    assert fetch("vosk-model-test", url=server.url + "/m.zip", sha256="0" * 64, cache=tmp_path) == path


def test_a_checksum_that_is_not_one_is_refused_before_any_download(server, tmp_path):
    """The first-run note prints ``--sha256 SHA256_OF_THE_ARCHIVE`` for the user to fill
    in; pasted as it is, it is refused at once, not after a download."""
    server.files["/m.zip"] = model_zip()
    for given in ("SHA256_OF_THE_ARCHIVE", "ab" * 31, "ab" * 33, "g" * 64):
        with pytest.raises(ModelError, match="64 hexadecimal digits"):
            fetch("vosk-model-test", url=server.url + "/m.zip", sha256=given, cache=tmp_path)
    assert not (tmp_path / "downloads").exists()  # nothing was fetched


def test_wrong_checksum_is_refused_and_removed(server, tmp_path):
    server.files["/m.zip"] = model_zip()
    with pytest.raises(ModelError, match="SHA-256 mismatch"):
        fetch("vosk-model-test", url=server.url + "/m.zip", sha256="ab" * 32, cache=tmp_path)
    assert not (tmp_path / "models" / "vosk-model-test").exists()
    assert not list((tmp_path / "downloads").iterdir())


def test_corrupted_archive_leaves_nothing_installed(server, tmp_path):
    data = bytearray(model_zip())
    data[100:140] = b"\xff" * 40  # damage inside the archive; the checksum matches the damage
    server.files["/m.zip"] = bytes(data)
    with pytest.raises(ModelError):
        fetch(
            "vosk-model-test",
            url=server.url + "/m.zip",
            sha256=hashlib.sha256(data).hexdigest(),
            cache=tmp_path,
        )
    assert not (tmp_path / "models" / "vosk-model-test").exists()
    assert not list((tmp_path / "models").glob(".unpack-*"))


def test_interrupted_download_resumes(server, tmp_path):
    data = model_zip()
    server.files["/m.zip"] = data
    server.cut_after = len(data) // 3
    digest = hashlib.sha256(data).hexdigest()
    with pytest.raises(ModelError, match="interrupted"):
        fetch("vosk-model-test", url=server.url + "/m.zip", sha256=digest, cache=tmp_path)
    part = tmp_path / "downloads" / "vosk-model-test.zip.part"
    assert part.stat().st_size == len(data) // 3
    path = fetch("vosk-model-test", url=server.url + "/m.zip", sha256=digest, cache=tmp_path)
    assert server.ranges == [f"bytes={len(data) // 3}-"]  # the second fetch asked only for the rest
    assert (path / "conf" / "mfcc.conf").exists()


def test_refusals(server, tmp_path):
    with pytest.raises(ModelError, match="unknown model"):
        fetch("no-such-model", cache=tmp_path)
    for name in ("../../escaped", "a/b", "..", ".", ""):  # a name is one folder inside the cache
        with pytest.raises(ModelError, match="use letters, digits"):
            fetch(name, url=server.url + "/m.zip", sha256="0" * 64, cache=tmp_path / "c")
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "c").exists()
    with pytest.raises(ModelError, match="no SHA-256 is recorded"):
        fetch("vosk-model-small-cn-0.22", cache=tmp_path)  # refused before any download
    with pytest.raises(ModelError, match="HTTP 404"):
        fetch("x", url=server.url + "/missing.zip", sha256="0" * 64, cache=tmp_path)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("../evil/am/final.mdl", b"x")
    server.files["/evil.zip"] = buffer.getvalue()
    with pytest.raises(ModelError, match="outside the archive"):
        fetch(
            "evil",
            url=server.url + "/evil.zip",
            sha256=hashlib.sha256(buffer.getvalue()).hexdigest(),
            cache=tmp_path,
        )
    assert not (tmp_path / "evil").exists()


def test_resolution_order(tmp_path, monkeypatch):
    monkeypatch.setenv("AUDIO_CLASSIFIER_CACHE", str(tmp_path))
    monkeypatch.delenv("AUDIO_CLASSIFIER_ASR_MODEL", raising=False)
    assert resolve_asr_model(None) is None
    (tmp_path / "models" / "vosk-model-small-cn-0.22").mkdir(parents=True)
    assert resolve_asr_model(None) == tmp_path / "models" / "vosk-model-small-cn-0.22"
    monkeypatch.setenv("AUDIO_CLASSIFIER_ASR_MODEL", str(tmp_path))
    assert resolve_asr_model(None) == tmp_path
    with pytest.raises(ModelError, match="not found"):
        resolve_asr_model("/no/such/model")
