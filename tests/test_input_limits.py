"""Input limits (connectors/limits.py): each limit at its value and one past it, per codec.

Expected depths and member counts come from the small recursive counters below,
written here on the parsed Python objects (independent of the text scan the
loader does); the byte sizes from ``len`` of the payload built here.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vitalstream.connectors.ble_codec import decode_ble, decode_omh_topic
from vitalstream.connectors.codecs import decode_json, decode_senml
from vitalstream.connectors.limits import (
    MAX_JSON_DEPTH,
    MAX_JSON_MEMBERS,
    MAX_PAYLOAD_BYTES,
    json_shape,
    load_json,
)
from vitalstream.errors import DecodeError
from vitalstream.model import DeadLetter, Message, RawReading, Reading
from vitalstream.stream.assembly import ingest
from vitalstream.stream.settings import Settings

NS = 1_000_000_000
T0 = 1795600800 * NS  # 2026-11-25T10:00:00Z
RECV = T0 + NS
DECODERS = {"json": decode_json, "senml": decode_senml, "ble": decode_ble, "omh": decode_omh_topic}


def depth(o: object) -> int:
    if isinstance(o, dict):
        return 1 + max((depth(v) for v in o.values()), default=0)
    if isinstance(o, list):
        return 1 + max((depth(v) for v in o), default=0)
    return 0


def members(o: object) -> int:
    if isinstance(o, dict):
        return len(o) + sum(members(v) for v in o.values())
    if isinstance(o, list):
        return len(o) + sum(members(v) for v in o)
    return 0


def nested(levels: int) -> object:
    """``levels`` arrays, one inside the other, around a 0."""
    o: object = 0
    for _ in range(levels):
        o = [o]
    return o


# One valid payload per codec, each giving heart rate 72 at T0 (BLE 2A37: flags 0x00 =
# uint8 rate, 0x48 = 72).
def json_doc(**extra) -> dict:
    return {"patient": "p-1", "readings": [{"signal": "heart_rate", "value": 72, "t_ns": T0}],
            **extra}


def senml_doc() -> list:
    return [{"bn": "dev-1:", "n": "heart_rate", "u": "/min", "v": 72, "t": T0 // NS}]


def ble_doc(**extra) -> dict:
    return {"device": "AA:BB:CC:DD:EE:01", "uuid": "2A37", "hex": "00 48", "t_ns": T0, **extra}


def omh_doc(**extra) -> dict:
    return {"header": {"id": "p-1", "creation_date_time": "2026-11-25T10:00:00Z",
                       "schema_id": {"namespace": "omh", "name": "heart-rate", "version": "2.0"},
                       **extra},
            "body": {"heart_rate": {"value": 72, "unit": "beats/min"},
                     "effective_time_frame": {"date_time": "2026-11-25T10:00:00Z"}}}


VALID = {"json": json_doc, "senml": senml_doc, "ble": ble_doc, "omh": omh_doc}
DEVICE = {"json": "dev-1", "senml": "dev-1", "ble": "gw-1", "omh": "dev-1"}


def _b(doc: object) -> bytes:
    return json.dumps(doc).encode()


def _reason(codec: str, payload: bytes) -> str:
    with pytest.raises(DecodeError) as info:
        DECODERS[codec](payload, DEVICE[codec], RECV)
    return info.value.reason


def _values(codec: str, payload: bytes) -> list[float]:
    out = DECODERS[codec](payload, DEVICE[codec], RECV)
    assert all(isinstance(r, RawReading) for r in out), out
    return [r.value for r in out]


@pytest.mark.parametrize("codec", sorted(DECODERS))
def test_every_valid_payload_decodes(codec):
    assert _values(codec, _b(VALID[codec]())) == [72.0]


def test_defaults_are_the_documented_ones():
    assert (MAX_PAYLOAD_BYTES, MAX_JSON_DEPTH, MAX_JSON_MEMBERS) == (65536, 32, 10_000)


# --- payload size -----------------------------------------------------------------------

def _padded(codec: str, size: int) -> bytes:
    # JSON allows whitespace after the value: the same document, exactly ``size`` bytes
    body = _b(VALID[codec]())
    return body + b" " * (size - len(body))


@pytest.mark.parametrize("codec", sorted(DECODERS))
def test_payload_at_the_size_limit_decodes_one_byte_more_is_refused(codec):
    at = _padded(codec, MAX_PAYLOAD_BYTES)
    assert len(at) == 65536
    assert _values(codec, at) == [72.0]
    assert _reason(codec, _padded(codec, MAX_PAYLOAD_BYTES + 1)) == "payload_too_large"


@pytest.mark.parametrize("codec", sorted(DECODERS))
def test_a_megabyte_is_refused_before_parsing(codec):
    # not JSON at all: a parser would say bad_json, the size check answers first
    assert _reason(codec, b"{" + b"x" * (1 << 20)) == "payload_too_large"


def test_ingest_dead_letters_a_megabyte_before_any_codec_runs():
    calls = []

    def counting(payload, device, recv_ns):  # a codec of the caller's table, not the subject
        calls.append(len(payload))
        return []

    ing = ingest(Settings(), codecs={"raw": counting})
    out = ing.process_batch([Message("vitalstream/dev-1/raw", b"0" * (1 << 20), RECV),
                             Message("vitalstream/dev-1/raw", b"0" * 10, RECV)])
    dead = [o for o in out if isinstance(o, DeadLetter)]
    assert [(d.reason, d.device) for d in dead] == [("payload_too_large", "dev-1")]
    assert str(1 << 20) in dead[0].detail
    assert calls == [10]


# --- depth ------------------------------------------------------------------------------

EXT = {"json": lambda k: json_doc(ext=nested(k)), "ble": lambda k: ble_doc(ext=nested(k)),
       "senml": lambda k: [{**senml_doc()[0], "ext": nested(k)}],
       # the header admits extra properties (data-point-1.0: no additionalProperties: false)
       "omh": lambda k: omh_doc(ext=nested(k))}


@pytest.mark.parametrize("codec", sorted(DECODERS))
def test_nesting_at_the_depth_limit_decodes_one_more_is_too_deep(codec):
    k = next(k for k in range(64) if depth(EXT[codec](k)) == MAX_JSON_DEPTH)
    at, over = EXT[codec](k), EXT[codec](k + 1)
    assert (depth(at), depth(over)) == (32, 33)
    assert _values(codec, _b(at)) == [72.0]
    assert _reason(codec, _b(over)) == "too_deep"


@pytest.mark.parametrize("codec", sorted(DECODERS))
@pytest.mark.parametrize("opener", [b"[", b"{", b'{"a":'])
def test_sixty_thousand_openers_are_too_deep_not_a_recursion_error(codec, opener):
    n = MAX_PAYLOAD_BYTES // len(opener)
    assert _reason(codec, opener * n) == "too_deep"


def test_brackets_inside_strings_are_not_nesting():
    doc = json_doc(note="[" * 1000 + '\\"{' * 100)
    assert _values("json", _b(doc)) == [72.0]
    assert load_json(_b({"a": ["]]]", "[[["]}), step="decode", device=None) == {"a": ["]]]", "[[["]}


# --- members ----------------------------------------------------------------------------

def _senml_pack(extra_fields: int) -> list:
    # the shortest records: a base name in the first one, then {"v": 1} each
    first = {"bn": "dev-1:heart_rate", "v": 1, **{f"x{i}": 0 for i in range(extra_fields)}}
    return [first] + [{"v": 1}] * 4998


def test_senml_pack_at_the_member_limit_decodes_one_more_is_too_many_fields():
    at, over = _senml_pack(1), _senml_pack(2)
    assert (members(at), members(over)) == (10_000, 10_001)
    assert len(_b(at)) <= MAX_PAYLOAD_BYTES
    assert _values("senml", _b(at)) == [1.0] * 4999
    assert _reason("senml", _b(over)) == "too_many_fields"


@pytest.mark.parametrize("codec", sorted(DECODERS))
def test_member_limit_holds_for_every_codec(codec):
    pad = {"json": json_doc, "ble": ble_doc, "omh": omh_doc}
    if codec == "senml":
        doc = lambda n: [{**senml_doc()[0], "ext": [0] * n}]  # noqa: E731
    else:
        doc = lambda n: pad[codec](ext=[0] * n)  # noqa: E731
    base = members(doc(0))
    at, over = doc(MAX_JSON_MEMBERS - base), doc(MAX_JSON_MEMBERS - base + 1)
    assert (members(at), members(over)) == (10_000, 10_001)
    assert _values(codec, _b(at)) == [72.0]
    assert _reason(codec, _b(over)) == "too_many_fields"


def test_empty_containers_and_strings_count_as_members():
    # 9999 empty arrays + 1 string = 10000 elements: at the limit; one "" more is over
    at = "[" + "[]," * 9999 + '"x,y"]'
    over = "[" + "[]," * 9999 + '"x,y",""]'
    assert (members(json.loads(at)), members(json.loads(over))) == (10_000, 10_001)
    assert len(load_json(at, step="decode", device=None)) == 10_000
    with pytest.raises(DecodeError) as info:
        load_json(over, step="decode", device=None)
    assert info.value.reason == "too_many_fields"


# --- numbers ----------------------------------------------------------------------------

@pytest.mark.parametrize("codec", sorted(DECODERS))
@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "-1e400", "1E+400",
                                     "2e0400", "9" * 400 + ".5", str(2**63), str(-(2**63) - 1),
                                     "1" * 5000])
def test_non_json_and_unrepresentable_numbers_are_bad_number(codec, literal):
    # in an extension field the decoder would never read: the payload itself is refused
    payload = _b(EXT[codec](0)).replace(b'"ext": 0', b'"ext": ' + literal.encode())
    assert literal.encode() in payload
    assert _reason(codec, payload) == "bad_number"


def test_nan_as_a_reading_value_refuses_the_payload():
    payload = _b(json_doc()).replace(b'"value": 72', b'"value": NaN')
    with pytest.raises(DecodeError) as info:
        decode_json(payload, "dev-1", RECV)
    assert (info.value.reason, info.value.device) == ("bad_number", "dev-1")
    assert "NaN" in info.value.detail


@pytest.mark.parametrize("t_ns", [2**63 - 1, -(2**63), 10**18])
def test_the_64_bit_extremes_are_numbers(t_ns):
    doc = json_doc()
    doc["readings"][0]["t_ns"] = t_ns
    assert [r.event_ns for r in decode_json(_b(doc), "dev-1", RECV)] == [t_ns]


@pytest.mark.parametrize("value", [1e308, -1.7976931348623157e308, 5e-324, 1e-400, 123.456e-7])
def test_finite_floats_near_the_edges_are_numbers(value):
    payload = _b(json_doc()).replace(b'"value": 72', b'"value": ' + repr(value).encode())
    assert _values("json", payload) == [float(repr(value))]


def test_the_string_nan_stays_a_per_reading_bad_value():
    doc = json_doc()
    doc["readings"].append({"signal": "heart_rate", "value": "NaN", "t_ns": T0 + NS})
    out = decode_json(_b(doc), "dev-1", RECV)
    assert out[0].value == 72.0 and out[1].reason == "bad_value"


# --- the ingest path --------------------------------------------------------------------

def test_a_batch_mixing_hostile_and_valid_messages_keeps_every_valid_reading():
    hostile = {
        "payload_too_large": Message("vitalstream/dev-9/json", b"[" * (1 << 20), RECV),
        "too_deep": Message("vitalstream/dev-9/senml", b"[" * 60_000, RECV),
        "too_many_fields": Message("vitalstream/dev-9/json", b"[" + b"0," * 10_000 + b"0]", RECV),
        "bad_number": Message("vitalstream/dev-9/ble", _b(ble_doc()).replace(b"}", b', "x": NaN}'),
                              RECV),
        "bad_json": Message("vitalstream/dev-9/omh", b"\xff\xfe\x00{", RECV),
    }
    valid = []
    for i in range(4):  # four devices, one valid message each, at distinct times
        doc = json_doc()
        doc["readings"][0].update(value=70 + i, t_ns=T0 + i * NS)
        valid.append(Message(f"vitalstream/dev-{i}/json", _b(doc), RECV))
    batch = [valid[0], hostile["payload_too_large"], valid[1], hostile["too_deep"],
             hostile["too_many_fields"], valid[2], hostile["bad_number"], hostile["bad_json"],
             valid[3]]
    out = ingest(Settings()).process_batch(batch)
    readings = [(r.device, r.value) for r in out if isinstance(r, Reading)]
    assert readings == [("dev-0", 70.0), ("dev-1", 71.0), ("dev-2", 72.0), ("dev-3", 73.0)]
    dead = [d for d in out if isinstance(d, DeadLetter)]
    assert [d.reason for d in dead] == ["payload_too_large", "too_deep", "too_many_fields",
                                        "bad_number", "bad_json"]
    # each dead letter keeps what was sent, cut to the payload limit (a flood of megabyte
    # messages must not be stored whole): the 1 MiB one keeps its first 64 KiB and says so
    assert [d.payload for d in dead] == [hostile[d.reason].payload[:MAX_PAYLOAD_BYTES] for d in dead]
    big = next(d for d in dead if d.reason == "payload_too_large")
    assert len(big.payload) == MAX_PAYLOAD_BYTES and f"of {1 << 20} bytes" in big.detail


# --- the text scan agrees with the parsed document ----------------------------------------

_KEYS = st.text(alphabet=st.sampled_from('ab"\\[]{},: \n\u00e9\u2028'), max_size=5)
_DOCS = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False,
                                                                        allow_infinity=False)
    | _KEYS,
    lambda kids: st.lists(kids, max_size=5) | st.dictionaries(_KEYS, kids, max_size=5),
    max_leaves=30)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(doc=_DOCS, indent=st.sampled_from([None, 0, 2]), ascii_only=st.booleans())
def test_json_shape_matches_the_parsed_document(doc, indent, ascii_only):
    # strings full of quotes, backslashes and brackets, with and without whitespace
    raw = json.dumps(doc, indent=indent, ensure_ascii=ascii_only).encode()
    assert json_shape(raw) == (depth(doc), members(doc))
