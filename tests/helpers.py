"""Helpers shared by the tests."""

from __future__ import annotations

import http.server
import json
import threading
import time

import numpy as np


def tone_evidence(samples: np.ndarray, block: int = 800) -> list:
    """Run the tone detector alone over *samples* (8 kHz), in blocks."""
    from audio_classifier.tones import ToneDetector

    detector = ToneDetector()
    evidence = []
    for start in range(0, len(samples), block):
        evidence += detector.process(samples[start : start + block], start)
    return evidence + detector.finish()


def best_by_label(evidence: list) -> dict[str, float]:
    best: dict[str, float] = {}
    for item in evidence:
        best[item.label] = max(best.get(item.label, 0.0), item.score)
    return best


class Callbacks:
    """A local HTTP endpoint that records decision callbacks."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                owner.received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(204)
                self.end_headers()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/decisions"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def wait(self, count: int, timeout: float = 20) -> list[dict]:
        deadline = time.time() + timeout
        while len(self.received) < count and time.time() < deadline:
            time.sleep(0.05)
        return self.received
