"""espeak-ng through its library, one fork per utterance: the command line's samples
without the command line's start-up.

``espeak-ng --stdout`` spends about 5 of its 11 ms per sentence starting (exec, loading the
phoneme data, initialising), 3 loading the voice and 3 speaking (measured on this recipe's
sentences). The library can stay loaded, but it keeps state between utterances in
function statics (the pitch flutter's phase, the wave generator's cycle counters), so a
second sentence from one loaded engine differs from what the command line says: lengths
moved by up to 200 samples (measured). This module keeps one small helper process per
recipe worker that loads and initialises the engine exactly as the command line does and
never speaks itself; each utterance is spoken by a fork of it, whose state is that of a
fresh ``espeak-ng`` process. The samples are the command line's, bit for bit
(``tests/test_espeak_engine.py``), at about 6.5 ms a sentence in the corpus (the fork, the
voice and the speaking).

The helper runs this file as a script (standard library only) and talks over its pipes:
a request is one JSON line (voice, speed, pitch, text); the answer is a 4-byte
little-endian count of 16-bit samples at ``RATE`` Hz followed by those samples, or a
negative count and an error message of that many bytes.

If the library cannot be loaded, ``tts`` uses the command line. This file is not in the
recipe hash (``train.RECIPE_FILES``): what is spoken is defined by ``tts``'s command line,
which is, and this module is tested to reproduce it bit for bit.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import struct
import subprocess
import sys
import threading

LIBRARY = "libespeak-ng.so.1"
RATE = 22050
"""espeak-ng's output rate, Hz (the helper checks the library agrees)."""

# espeak-ng's speak_lib.h
_ENOUTPUT_MODE_SYNCHRONOUS = 0x0001
_POS_CHARACTER = 1
_ESPEAK_RATE, _ESPEAK_PITCH = 1, 3
_SYNTH_FLAGS = 0x0000 | 0x0100 | 0x1000
"""espeakCHARS_AUTO | espeakPHONEMES | espeakENDPAUSE: the command line's defaults."""
_SYNTH_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class _VoiceSelect(ctypes.Structure):
    _fields_ = [  # espeak_VOICE
        ("name", ctypes.c_char_p),
        ("languages", ctypes.c_char_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


class EngineError(RuntimeError):
    """espeak-ng could not speak a request."""


def _load() -> ctypes.CDLL:
    """The library, with the signatures of the functions used (speak_lib.h)."""
    c = ctypes
    lib = c.CDLL(LIBRARY)
    signatures = {
        "espeak_ng_InitializePath": [c.c_char_p],
        "espeak_ng_Initialize": [c.c_void_p],
        "espeak_ng_InitializeOutput": [c.c_int, c.c_int, c.c_char_p],
        "espeak_ng_GetSampleRate": [],
        "espeak_SetSynthCallback": [_SYNTH_CALLBACK],
        "espeak_SetVoiceByName": [c.c_char_p],
        "espeak_SetVoiceByProperties": [c.POINTER(_VoiceSelect)],
        "espeak_SetParameter": [c.c_int, c.c_int, c.c_int],
        "espeak_Synth": [
            c.c_char_p,
            c.c_size_t,
            c.c_uint,
            c.c_int,
            c.c_uint,
            c.c_uint,
            c.c_void_p,
            c.c_void_p,
        ],
        "espeak_Synchronize": [],
    }
    for name, argtypes in signatures.items():
        function = getattr(lib, name)
        function.argtypes = argtypes
        function.restype = None if name == "espeak_SetSynthCallback" else c.c_int
    return lib


def _serve() -> None:
    """The helper's loop (runs in the helper process): initialise as ``espeak-ng --stdout``
    does, then fork once per request."""
    lib = _load()
    lib.espeak_ng_InitializePath(None)
    context = ctypes.c_void_p()
    if lib.espeak_ng_Initialize(ctypes.byref(context)) != 0:
        raise SystemExit("espeak-ng: initialisation failed")
    if lib.espeak_ng_InitializeOutput(_ENOUTPUT_MODE_SYNCHRONOUS, 0, None) != 0:
        raise SystemExit("espeak-ng: output initialisation failed")
    if lib.espeak_ng_GetSampleRate() != RATE:
        raise SystemExit(f"espeak-ng speaks at {lib.espeak_ng_GetSampleRate()} Hz, expected {RATE}")
    chunks: list[bytes] = []

    def collect(wav, n, events):
        if n > 0:
            chunks.append(ctypes.string_at(wav, 2 * n))
        return 0

    callback = _SYNTH_CALLBACK(collect)
    lib.espeak_SetSynthCallback(callback)
    # Ctrl-C reaches the whole process group: the owner stops, its pipe closes, this loop
    # ends; no traceback of our own on top of the owner's
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    out = sys.stdout.buffer.fileno()
    for line in sys.stdin.buffer:
        pid = os.fork()
        if pid == 0:  # the child: a fresh engine's state, one utterance, then gone
            try:
                request = json.loads(line)
                _speak(lib, request)
                data = b"".join(chunks)
                _write_all(out, struct.pack("<i", len(data) // 2) + data)
                code = 0
            except Exception as error:  # noqa: BLE001 (reported to the caller, not lost)
                message = f"{type(error).__name__}: {error}".encode()
                _write_all(out, struct.pack("<i", -len(message)) + message)
                code = 1
            os._exit(code)
        _, status = os.waitpid(pid, 0)
        if os.WIFSIGNALED(status):
            message = f"espeak-ng died with signal {os.WTERMSIG(status)}".encode()
            _write_all(out, struct.pack("<i", -len(message)) + message)


def _write_all(fd: int, data: bytes) -> None:
    """``os.write`` may write part of a long answer (a pipe, a signal): write the rest too."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _speak(lib: ctypes.CDLL, request: dict) -> None:
    """What ``espeak-ng -v VOICE -s SPEED -p PITCH --stdout TEXT`` does after start-up."""
    name = request["voice"].encode()
    if lib.espeak_SetVoiceByName(name) != 0:
        select = _VoiceSelect(languages=name)  # as the command line: the name as a language
        if lib.espeak_SetVoiceByProperties(ctypes.byref(select)) != 0:
            raise EngineError(f"no espeak-ng voice {request['voice']!r}")
    lib.espeak_SetParameter(_ESPEAK_RATE, int(request["speed"]), 0)
    lib.espeak_SetParameter(_ESPEAK_PITCH, int(request["pitch"]), 0)
    text = request["text"].encode()
    if lib.espeak_Synth(text, len(text) + 1, 0, _POS_CHARACTER, 0, _SYNTH_FLAGS, None, None):
        raise EngineError("espeak_Synth failed")
    if lib.espeak_Synchronize() != 0:
        raise EngineError("espeak_Synchronize failed")


class Engine:
    """A helper process owned by this process; ``speak`` is safe from one thread at a time."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-I", os.path.abspath(__file__)], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        self._lock = threading.Lock()

    def speak(self, text: str, voice: str, speed: int, pitch: int) -> bytes:
        """16-bit little-endian samples at ``RATE`` Hz, as ``espeak-ng --stdout`` writes them."""
        request = json.dumps({"voice": voice, "speed": speed, "pitch": pitch, "text": text}) + "\n"
        with self._lock:
            self._process.stdin.write(request.encode())
            self._process.stdin.flush()
            head = self._process.stdout.read(4)
            if len(head) < 4:
                raise EngineError(f"the espeak-ng helper exited (code {self._process.poll()})")
            (count,) = struct.unpack("<i", head)
            body = self._process.stdout.read(2 * count if count >= 0 else -count)
        if count < 0:
            raise EngineError(body.decode(errors="replace"))
        return body

    def close(self) -> None:
        self._process.stdin.close()
        self._process.wait()


def library_available() -> bool:
    """Whether espeak-ng's library loads here."""
    try:
        ctypes.CDLL(LIBRARY)
    except OSError:
        return False
    return True


if __name__ == "__main__":
    _serve()
