"""Fuzzing every decoder and the whole ingest path with hypothesis.

Properties:

- a decoder (``json``, ``senml``, ``ble`` with GATT values and advertisements, ``omh``)
  given any bytes, any JSON document, or a valid payload with one part mutated,
  returns readings and errors or raises a ``VitalstreamError``: nothing else escapes;
- ``Ingest.process_batch`` (real decoders, built by ``assembly.ingest(Settings())``)
  given a batch mixing hostile messages with valid ones raises nothing; every
  message ends with its own Ack; every dead letter carries a step, a non-empty reason
  and its message; no ``decoder_crash`` (the catch-all that hides a decoder bug);
  every rejection a decoder reports surfaces as a dead letter with that reason; and
  every valid message still yields exactly its readings (values and times are chosen
  here, so the expected readings are known before the batch runs).

Derandomised so CI runs the same examples every time; ``VS_FUZZ_EXAMPLES=5000`` for a
long hunt. ``benchmarks/fuzz_decoders.py`` drives the same entry point with atheris.
"""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from vitalstream.connectors.ble.gatt import DECODERS as GATT_DECODERS
from vitalstream.connectors.codecs import default_codecs
from vitalstream.connectors.limits import MAX_JSON_DEPTH, MAX_PAYLOAD_BYTES
from vitalstream.errors import VitalstreamError
from vitalstream.model import DeadLetter, Message, Quality, RawReading, Reading
from vitalstream.stream.assembly import ingest
from vitalstream.stream.ingest import Ack
from vitalstream.stream.settings import Settings
from vitalstream.timeutil import format_iso8601_ns

NS = 1_000_000_000
T0 = 1795600800 * NS  # 2026-11-25T10:00:00Z
RECV = T0 + 30 * NS
CODECS = default_codecs()

FUZZ = settings(max_examples=int(os.environ.get("VS_FUZZ_EXAMPLES", "150")), deadline=None,
                derandomize=True, suppress_health_check=list(HealthCheck))

# --- hostile material --------------------------------------------------------------------

# Ids with the characters that break stores and logs: controls, bidi, zero-width, quotes,
# surrogates are impossible in a UTF-8 payload, but lone ones reach json via \\u escapes.
ODD_IDS = st.one_of(
    st.text(min_size=0, max_size=140),
    st.sampled_from(["", " ", "a b", "dev\n1", "dev\x00", "\u202edev", "d\u200bev", 'de"v',
                     "de\\v", "x" * 129, "AA:BB:CC:DD:EE:F1", "aa-bb-cc-dd-ee-f2", "\ud800"]),
)
HUGE_NUMBERS = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([2**63, -(2**63) - 1, 10**400, 2**63 - 1]),
    st.floats(allow_nan=True, allow_infinity=True),
)
SCALARS = st.one_of(st.none(), st.booleans(), HUGE_NUMBERS, ODD_IDS,
                    st.sampled_from(["NaN", "Infinity", "-1e999", "1e999"]))
JSON_VALUES = st.recursive(
    SCALARS,
    lambda kids: st.one_of(st.lists(kids, max_size=6),
                           st.dictionaries(st.text(max_size=8) | st.sampled_from(
                               ["signal", "value", "t", "t_ns", "readings", "v", "n", "bn", "bt",
                                "bver", "s", "device", "uuid", "hex", "b64", "header", "body",
                                "model_id", "type", "bpm", "tz", "rssi", "x_", "flags"]), kids,
                               max_size=6)),
    max_leaves=25)


def dumps(doc: object) -> bytes:
    # allow_nan writes NaN/Infinity literals, which a hostile sender may do too
    return json.dumps(doc, allow_nan=True).encode("utf-8", "surrogatepass")


@st.composite
def deep(draw) -> bytes:
    """Nesting around the limit or far past it, closed or not, of arrays or objects."""
    n = draw(st.sampled_from([MAX_JSON_DEPTH - 1, MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1, 999, 1000,
                              5000, 60_000]))
    opener, closer = draw(st.sampled_from([("[", "]"), ('{"a":', "}")]))
    inner = draw(st.sampled_from(["0", "", "NaN"]))
    close = draw(st.booleans())
    return (opener * n + inner + (closer * n if close else "")).encode()[:MAX_PAYLOAD_BYTES + 8]


# --- valid payloads (the known readings of the ingest property) --------------------------

def valid_payload(codec: str, device: str, value: int, event_ns: int) -> tuple[str, bytes]:
    """(topic, payload) of one heart-rate ``value`` /min at ``event_ns`` from ``device``."""
    if codec == "json":
        doc: object = {"readings": [{"signal": "heart_rate", "value": value, "t_ns": event_ns}]}
    elif codec == "senml":
        # whole seconds, so the decoder's microsecond rounding leaves the time as built
        doc = [{"bn": f"{device}:", "n": "heart_rate", "u": "/min", "v": value,
                "t": event_ns // NS}]
    elif codec == "ble":  # 2A37, flags 0x00: one uint8 rate; the gateway time stands
        doc = {"device": device, "uuid": "2A37", "hex": f"00 {value:02x}", "t_ns": event_ns}
        return "vitalstream/gw-valid/ble", dumps(doc)
    else:
        doc = {"header": {"id": f"id-{device}-{event_ns}",
                          "creation_date_time": format_iso8601_ns(event_ns),
                          "schema_id": {"namespace": "omh", "name": "heart-rate", "version": "2.0"}},
               "body": {"heart_rate": {"value": value, "unit": "beats/min"},
                        "effective_time_frame": {"date_time": format_iso8601_ns(event_ns)}}}
    return f"vitalstream/{device}/{codec}", dumps(doc)


def _valid_doc(codec: str) -> object:
    return json.loads(valid_payload(codec, "dev-1", 72, T0)[1])


@st.composite
def mutated(draw, codec: str) -> bytes:
    """A valid payload with one value replaced, one field added or deleted, or bytes flipped."""
    doc = _valid_doc(codec)
    how = draw(st.sampled_from(["replace", "add", "delete", "bytes", "splice_deep"]))
    if how == "bytes":
        raw = bytearray(dumps(doc))
        for _ in range(draw(st.integers(1, 6))):
            i = draw(st.integers(0, len(raw) - 1))
            raw[i] = draw(st.integers(0, 255))
        return bytes(raw)
    # walk to a random container inside the document
    node = doc
    for _ in range(draw(st.integers(0, 4))):
        kids = list(node.values()) if isinstance(node, dict) else node
        kids = [k for k in kids if isinstance(k, (dict, list)) and k]
        if not kids:
            break
        node = draw(st.sampled_from(kids))
    keys = list(node.keys()) if isinstance(node, dict) else list(range(len(node)))
    if how == "splice_deep":
        # json.dumps itself stops near 1000 levels; deep() covers the far side
        depth = draw(st.sampled_from([MAX_JSON_DEPTH - 3, MAX_JSON_DEPTH, 40, 500]))
        inner: object = 0
        for _ in range(depth):
            inner = [inner]
        value = inner
    else:
        value = draw(JSON_VALUES)
    if how == "delete" and keys:
        del node[draw(st.sampled_from(keys))]
    elif how == "add" and isinstance(node, dict):
        node[draw(st.text(max_size=6))] = value
    elif how == "add":
        node.append(value)
    elif keys:
        node[draw(st.sampled_from(keys))] = value
    return dumps(doc)


def hostile_payloads(codec: str) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=300), JSON_VALUES.map(dumps), deep(), mutated(codec),
                     st.sampled_from([b"", b"null", b"[]", b"{}", b"\xef\xbb\xbf{}",
                                      b"\xff\xfe{\x00}\x00", b"{" * (MAX_PAYLOAD_BYTES + 1),
                                      b'{"readings": [' + b"{}," * 9999 + b"{}]"]))


def _decode(codec: str, payload: bytes, device: str) -> list:
    """The decoder's answer; only a VitalstreamError may be raised (it is returned)."""
    try:
        out = CODECS[codec](payload, device, RECV)
    except VitalstreamError as err:
        return [err]
    assert isinstance(out, list)
    for item in out:
        assert isinstance(item, (RawReading, VitalstreamError)), item
        if isinstance(item, VitalstreamError):
            assert item.reason and isinstance(item.reason, str)
    return out


# --- decoder properties -------------------------------------------------------------------

@FUZZ
@given(st.data())
@example(None)
def test_json_decoder_raises_only_vitalstream_errors(data):
    payload = data.draw(hostile_payloads("json")) if data else b"[" * 60_000
    _decode("json", payload, "dev-1")


@FUZZ
@given(st.data())
@example(None)
def test_senml_decoder_raises_only_vitalstream_errors(data):
    payload = data.draw(hostile_payloads("senml")) if data else b'[{"bn": "a:", "v": 1e999}]'
    _decode("senml", payload, "dev-1")


@FUZZ
@given(st.data())
@example(None)
def test_omh_decoder_raises_only_vitalstream_errors(data):
    payload = data.draw(hostile_payloads("omh")) if data else b'{"header": ' * 5000
    _decode("omh", payload, "dev-1")


@FUZZ
@given(st.data())
@example(None)
def test_ble_gateway_envelopes_raise_only_vitalstream_errors(data):
    payload = data.draw(hostile_payloads("ble")) if data else b'{"device": NaN, "uuid": "2A37"}'
    _decode("ble", payload, "gw-1")


@FUZZ
@given(uuid=st.sampled_from(sorted(GATT_DECODERS)) | st.text(max_size=40),
       value=st.binary(max_size=40), device=ODD_IDS, extra=st.dictionaries(
           st.sampled_from(["t", "t_ns", "tz", "rssi", "gateway"]), SCALARS, max_size=3))
def test_ble_gatt_values_raise_only_vitalstream_errors(uuid, value, device, extra):
    # every characteristic the decoder knows, with values of any length and content
    env = {"device": device, "uuid": uuid, "hex": value.hex() or "00", **extra}
    _decode("ble", dumps(env), "gw-1")


@FUZZ
@given(decoded=st.dictionaries(st.sampled_from(["type", "bpm", "act_bpm", "weight", "unit",
                                                "weighing_mode", "model_id", "id", "rssi"]),
                               JSON_VALUES, max_size=6),
       kind=st.sampled_from(["BODY", "SCALE", "x"]), device=ODD_IDS)
def test_ble_decoded_advertisements_raise_only_vitalstream_errors(decoded, kind, device):
    env = {"type": kind, **decoded, "id": device, "model_id": decoded.get("model_id", "m")}
    _decode("ble", dumps(env), "gw-1")


# --- the ingest path ----------------------------------------------------------------------

CODEC_NAMES = sorted(CODECS)


@st.composite
def hostile_message(draw) -> tuple[str, bytes]:
    codec = draw(st.sampled_from(CODEC_NAMES + ["nope"]))
    device = draw(st.sampled_from(["h-1", "h-2"]) | ODD_IDS)
    prefix = draw(st.sampled_from(["vitalstream/", "", "a/b/vitalstream/"]))
    return f"{prefix}{device}/{codec}", draw(hostile_payloads(codec if codec in CODECS else "json"))


@st.composite
def batch(draw) -> tuple[list[tuple[str, bytes]], list[tuple[str, int, int]], list[bool]]:
    """Messages (topic, payload), the readings the valid ones must give, and which are valid."""
    n_valid = draw(st.integers(1, 5))
    valid, expected = [], []
    for i in range(n_valid):
        codec = draw(st.sampled_from(CODEC_NAMES))
        device = f"valid-{i}" if codec != "ble" else f"AA:BB:CC:DD:EE:{i:02X}"
        value = draw(st.integers(40, 200))  # plausible heart rates, in one uint8
        event_ns = T0 + draw(st.integers(-20, 20)) * NS
        valid.append(valid_payload(codec, device, value, event_ns))
        expected.append((device, float(value), event_ns))
    hostile = draw(st.lists(hostile_message(), min_size=1, max_size=6))
    # interleave: hostile messages before, between and after the valid ones
    order = draw(st.permutations([True] * len(valid) + [False] * len(hostile)))
    vi, hi = iter(valid), iter(hostile)
    msgs = [next(vi) if is_valid else next(hi) for is_valid in order]
    return msgs, expected, list(order)


def _per_message(out: list) -> dict[int, list]:
    groups: dict[int, list] = {}
    current: list = []
    for o in out:
        if isinstance(o, Ack):
            assert o.token not in groups, f"two Acks for message {o.token}"
            groups[o.token] = current
            current = []
        else:
            current.append(o)
    assert current == [], "outputs after the last Ack"
    return groups


@FUZZ
@given(batch())
def test_ingest_keeps_every_valid_reading_and_dead_letters_every_rejection(case):
    msgs, expected, is_valid = case
    ing = ingest(Settings())
    messages = [Message(t, p, RECV, token=i) for i, (t, p) in enumerate(msgs)]
    out = ing.process_batch(messages)  # must not raise
    groups = _per_message(out)
    assert sorted(groups) == list(range(len(messages)))

    got = []
    for i, m in enumerate(messages):
        for o in groups[i]:
            if isinstance(o, DeadLetter):
                assert o.step and o.reason and isinstance(o.reason, str)
                assert o.reason != "decoder_crash", o.detail
                # what was sent, cut to the payload limit (stream.ingest: a megabyte flood
                # is not stored whole)
                assert (o.topic, o.payload) == (m.topic, m.payload[:MAX_PAYLOAD_BYTES])
            if isinstance(o, Reading) and is_valid[i]:
                got.append((o.device, o.value, o.event_ns))
        if is_valid[i]:
            assert not any(isinstance(o, DeadLetter) for o in groups[i]), groups[i]
        else:
            _rejections_surface(m, groups[i])
    assert got == expected


def _rejections_surface(m: Message, outputs: list) -> None:
    """What the decoder rejects of ``m`` appears among its dead letters, reason for reason."""
    dead = sorted(o.reason for o in outputs if isinstance(o, DeadLetter))
    try:
        from vitalstream.connectors.codecs import parse_topic
        device, codec = parse_topic(m.topic)
    except VitalstreamError:
        assert dead == ["bad_topic"]
        return
    if codec not in CODECS:
        assert len(dead) == 1  # an unknown codec, or the id it came from
        return
    if not _is_id(device):
        assert dead == ["bad_identifier"]
        return
    decoded = _decode(codec, m.payload, device)
    rejected = sorted(e.reason for e in decoded if isinstance(e, VitalstreamError))
    # each decoder rejection is there; later steps (ids, units, plausibility) may add more
    for reason in rejected:
        assert reason in dead, (reason, dead)
    assert len(dead) >= len(rejected)


def _is_id(device: str) -> bool:
    from vitalstream.ids import is_identifier
    return is_identifier(device)


def test_the_fuzz_alphabet_reaches_every_codec():
    # a guard on the strategies themselves: each codec has a valid payload that decodes
    for codec in CODEC_NAMES:
        out = _decode(codec, valid_payload(codec, "dev-1", 72, T0)[1], "dev-1" if codec != "ble"
                      else "gw-valid")
        assert [r.value for r in out] == [72.0], (codec, out)


# --- findings of benchmarks/fuzz_decoders.py (atheris), kept as regressions ---------------

# 2026-12-04, 90 s campaign: "flags" not a list of strings made decode_json raise TypeError
# (ingest hid it as decoder_crash). The input as found, less its codec-selector byte:
FOUND_FLAGS_INT = (b'{"patient": "p-1", "readings": [{"siOOOO": "2026-1126-11-25T10:00:00Z", '
                   b'"flags": ["motion"]}, {"signal": "spo2", "value": 9, "t_ns": '
                   b'1795600800000000000, "unit": "%-25T10:00:00Z", "flags":2016000000, '
                   b'"unit": "%"}]}')


def test_found_flags_int_is_a_per_reading_bad_value():
    out = _decode("json", FOUND_FLAGS_INT, "dev-1")
    assert [getattr(o, "reason", None) for o in out] == ["missing_field", "bad_value"]
    assert "flags" in out[1].detail


@pytest.mark.parametrize("flags", [7, 0, "motion", {"motion": True}, ["motion", {}],
                                   ["motion", ["x"]], [None], True])
def test_flags_must_be_a_list_of_strings(flags):
    doc = {"readings": [{"signal": "heart_rate", "value": 70, "t_ns": T0, "flags": flags},
                        {"signal": "heart_rate", "value": 71, "t_ns": T0 + NS,
                         "flags": ["motion", "a-newer-flag"]}]}
    out = _decode("json", dumps(doc), "dev-1")
    assert out[0].reason == "bad_value"
    assert isinstance(out[1], RawReading) and out[1].quality == Quality.MOTION_ARTEFACT


def test_found_flags_int_in_a_batch_is_dead_lettered_not_a_crash():
    topic, good = valid_payload("json", "valid-0", 72, T0)
    out = ingest(Settings()).process_batch([Message("vitalstream/h-1/json", FOUND_FLAGS_INT, RECV),
                                            Message(topic, good, RECV)])
    assert sorted(o.reason for o in out if isinstance(o, DeadLetter)) == ["bad_value",
                                                                         "missing_field"]
    assert [(r.device, r.value) for r in out if isinstance(r, Reading)] == [("valid-0", 72.0)]
