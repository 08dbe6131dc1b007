"""Property-based tests of everything a client or a file controls: stream metadata, Twilio
messages, AudioSocket framing, signalling hints, the WAV and raw decoders. Whatever comes
in, the answer is a result or the project's own error, never another exception."""

import asyncio
import io
import json
import struct

import numpy as np
import soundfile as sf
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from audio_classifier import Classifier, ClassifierConfig
from audio_classifier.audio import ENCODINGS, StreamConverter, open_file
from audio_classifier.channels.signalling import Hints
from audio_classifier.errors import AudioClassifierError
from audio_classifier.server.calls import ClientGone
from audio_classifier.server.protocol import ProtocolError, StreamStart, parse_start
from audio_classifier.server.transports import AudioSocketStream, TwilioStream

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

numbers = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([8000, 16000, 0, -1, 7, 384001, 1e400, 2**63]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=20))
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
KEYS = [
    "sample_rate", "sampleRate", "rate", "encoding", "format", "codec", "channels", "channel", "mixType",
    "call_id", "callSid", "number", "hints", "sip_status", "q850_cause", "metadata", "close_on_final", "interim",
]  # fmt: skip
metadata = st.dictionaries(st.sampled_from(KEYS), st.one_of(numbers, json_values), max_size=6)


def _dumps(value) -> str:
    return json.dumps(value, allow_nan=True)


@FUZZ
@given(st.one_of(metadata.map(_dumps), st.text(max_size=200), st.binary(max_size=200)))
@example('{"sample_rate": Infinity}')
@example('{"sample_rate": 8000, "channels": -1e400}')
@example("[" * 5000 + "]" * 5000)
def test_stream_metadata_parses_or_says_why(text):
    try:
        assert isinstance(parse_start(text), StreamStart)
    except ProtocolError as exc:
        assert exc.code.startswith("bad_") and str(exc)


@FUZZ
@given(st.dictionaries(st.sampled_from(["sip_status", "q850_cause", "other"]), json_values, max_size=3))
def test_hints_parse_or_say_why(mapping):
    try:
        Hints.from_mapping(mapping)
    except AudioClassifierError as exc:
        assert str(exc)


class FakeWebSocket:
    """The messages a client sent, as Starlette hands them to the app."""

    def __init__(self, texts: list[str]) -> None:
        self.messages = [{"type": "websocket.receive", "text": t} for t in texts]

    async def receive(self) -> dict:
        return self.messages.pop(0) if self.messages else {"type": "websocket.disconnect"}


async def _drain(events) -> int:
    count = 0
    async for _ in events:
        count += 1
    return count


twilio_events = st.fixed_dictionaries(
    {
        "event": st.one_of(
            st.sampled_from(["start", "media", "stop", "mark", "dtmf", "connected"]), json_values
        )
    },
    optional={
        "start": st.one_of(
            json_values,
            st.fixed_dictionaries(
                {},
                optional={
                    "callSid": json_values,
                    "customParameters": st.one_of(json_values, metadata),
                    "mediaFormat": st.one_of(json_values, metadata),
                },
            ),
        ),
        "media": st.one_of(
            json_values, st.fixed_dictionaries({"payload": st.one_of(json_values, st.just("AAAA"))})
        ),
    },
)


@FUZZ
@given(st.lists(st.one_of(twilio_events.map(_dumps), st.text(max_size=50)), max_size=6))
def test_twilio_messages_become_events_or_a_protocol_error(texts):
    transport = TwilioStream(FakeWebSocket(texts))
    try:
        asyncio.run(_drain(transport.events()))
    except ProtocolError as exc:
        assert str(exc)


def _frames(draw_frames: list[tuple[int, bytes]]) -> bytes:
    return b"".join(struct.pack(">BH", kind, len(payload)) + payload for kind, payload in draw_frames)


audiosocket_bytes = st.one_of(
    st.binary(max_size=400),
    st.lists(
        st.tuples(st.sampled_from([0x00, 0x01, 0x03, 0x10, 0x12, 0x16, 0xFF, 0x7F]), st.binary(max_size=40)),
        max_size=8,
    ).map(_frames),
)


@FUZZ
@given(audiosocket_bytes)
def test_audiosocket_bytes_become_events_or_a_protocol_error(data):
    async def run() -> None:
        reader = asyncio.StreamReader()
        reader.feed_data(data)
        reader.feed_eof()
        transport = AudioSocketStream(reader, None)  # type: ignore[arg-type]
        try:
            await _drain(transport.events())
        except (ProtocolError, ClientGone):
            pass

    asyncio.run(run())


@FUZZ
@given(st.sampled_from(ENCODINGS), st.lists(st.binary(max_size=64), max_size=5))
def test_raw_chunks_decode_or_are_refused(encoding, chunks):
    converter = StreamConverter(8000, encoding)
    try:
        for chunk in chunks:
            out = converter.push(chunk)
            assert out.dtype == np.float32 and np.isfinite(out).all()
    except AudioClassifierError:
        assert encoding == "float32"  # only floats can be NaN, infinite or out of scale


def _wav_header() -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(800, dtype=np.float32), 8000, format="WAV", subtype="PCM_16")
    return buffer.getvalue()[:44]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.one_of(
        st.binary(max_size=600),
        st.binary(max_size=600).map(lambda tail: _wav_header() + tail),
        st.binary(min_size=8, max_size=600).map(lambda tail: b"RIFF" + tail[:4] + b"WAVE" + tail[4:]),
    ),
    st.sampled_from([".wav", ".ul", ".raw"]),
)
def test_files_decode_or_are_refused(tmp_path_factory, data, suffix):
    path = tmp_path_factory.mktemp("fuzz") / f"input{suffix}"
    path.write_bytes(data)
    classifier = _tones_only()
    try:
        decision = classifier.classify_file(path)
        assert 0.0 <= decision.confidence <= 1.0
    except AudioClassifierError as exc:
        assert str(exc)
    try:
        _, chunks = open_file(path)
        for chunk in chunks:
            assert len(chunk) >= 0
    except AudioClassifierError:
        pass


_CLASSIFIER: list[Classifier] = []


def _tones_only() -> Classifier:
    if not _CLASSIFIER:
        _CLASSIFIER.append(Classifier(ClassifierConfig(model_path=None, samples_path=None, asr_model=None)))
    return _CLASSIFIER[0]
