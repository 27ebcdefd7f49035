"""Input limits of the decoders, in one place, and the guarded JSON loader that enforces them.

Every payload arrives from outside (a device, a gateway, an app) and may be
broken or hostile. Each limit below bounds the work one message can cause, and
each has its own dead-letter reason so an integrator can tell which one a
message broke:

==========================  ===========  ======================  ==========================
limit                       default      dead-letter reason      what it bounds
==========================  ===========  ======================  ==========================
``MAX_PAYLOAD_BYTES``       65536 (64K)  ``payload_too_large``   bytes read per message,
                                                                 checked before any parsing
``MAX_JSON_DEPTH``          32           ``too_deep``            nesting of arrays/objects,
                                                                 checked before parsing (the
                                                                 C parser recurses per level)
``MAX_JSON_MEMBERS``        10000        ``too_many_fields``     array elements + object
                                                                 members in one document
number literals             finite,      ``bad_number``          ``NaN``/``Infinity`` (not
                            64-bit ints                          JSON, RFC 8259 section 6),
                                                                 a float that overflows to
                                                                 infinity, an integer outside
                                                                 [-2**63, 2**63)
==========================  ===========  ======================  ==========================

The deepest payload any codec defines nests 5 levels (an Open mHealth point's
``body.effective_time_frame.time_interval.duration``); 32 leaves room for
vendor extensions while staying far below Python's recursion limit. 10000
members allows a SenML pack of about 2000 four-field records, more than fit in 64 KiB of
realistic records, yet refuses a 20 KiB ``[0,0,0,...]``. Integers beyond 64
bits fit no time (``t_ns``) nor any store's integer field.

Identifiers have their own limit (``vitalstream.ids``: 1-128 printable
characters, ``bad_identifier``).

``load_json`` is the one JSON loader of the ``json``, ``senml``, ``ble`` and
``omh`` codecs. Shape (depth and member count) is measured on the text before
``json.loads`` runs, without recursion, so 60000 ``[`` characters (within the size limit) cost one
linear scan and give ``too_deep``, never a ``RecursionError``.

>>> load_json(b'{"v": [1, 2.5]}', step="decode", device="dev-1")
{'v': [1, 2.5]}
>>> try:
...     load_json(b"[" * 60_000, step="decode", device="dev-1")
... except DecodeError as e:
...     print(e.reason)
too_deep
>>> try:
...     load_json(b'{"value": NaN}', step="decode", device="dev-1")
... except DecodeError as e:
...     print(e.reason, e.detail)
bad_number NaN is not a JSON number (RFC 8259 section 6)
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate

from vitalstream.errors import DecodeError

MAX_PAYLOAD_BYTES = 64 * 1024
MAX_JSON_DEPTH = 32
MAX_JSON_MEMBERS = 10_000
INT_MIN, INT_MAX = -(2**63), 2**63 - 1  # signed 64-bit, the range of t_ns and store integers

PAYLOAD_TOO_LARGE = "payload_too_large"
TOO_DEEP = "too_deep"
TOO_MANY_FIELDS = "too_many_fields"
BAD_NUMBER = "bad_number"
BAD_JSON = "bad_json"

# Longest decimal literal of a 64-bit integer: "-9223372036854775808" is 20 characters.
_INT_DIGITS = len(str(INT_MIN))
_ESCAPE = re.compile(rb"\\.", re.S)  # an escape pair, removed before strings are found
_NOT_BRACKET = bytes(sorted(set(range(256)) - set(b"[]{}")))
_NOT_BRACKET_OR_QUOTE = bytes(sorted(set(range(256)) - set(b'"[]{}')))
_STEP = [0] * 256
for _c in b"[{":
    _STEP[_c] = 1
for _c in b"]}":
    _STEP[_c] = -1
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789E", b"000000000e")
# An integer leaves int64 only with 19 digits or more; a float overflows only with a 3-digit
# exponent ("e+000" once "+" is deleted) or 309 digits. Payloads with neither parse their
# numbers in json's C fast path; the Python hooks run only when one may be out of range.
_INT_RISK, _FLOAT_RISKS = b"0" * 19, (b"e000", b"0" * 20)


class _NumberRefused(ValueError):
    """Raised inside json.loads by the number hooks; becomes ``bad_number``."""


def check_payload_size(payload: bytes | str, *, step: str, device: str | None) -> None:
    """DecodeError ``payload_too_large`` when ``payload`` exceeds ``MAX_PAYLOAD_BYTES``.

    A ``str`` is measured in UTF-8 bytes, as it would travel.
    """
    n = len(payload) if isinstance(payload, (bytes, bytearray)) else _utf8_len(payload)
    if n > MAX_PAYLOAD_BYTES:
        raise DecodeError(step, device, PAYLOAD_TOO_LARGE,
                          f"{n} bytes, more than MAX_PAYLOAD_BYTES={MAX_PAYLOAD_BYTES}")


def _utf8_len(text: str) -> int:
    if len(text) * 4 <= MAX_PAYLOAD_BYTES:  # at most 4 bytes per character: surely small
        return len(text)
    return len(text.encode("utf-8", "surrogatepass"))


def json_shape(raw: bytes | str) -> tuple[int, int]:
    """(deepest nesting, array elements + object members) of JSON ``raw``, without recursion.

    Exact for valid JSON; for broken JSON an over-estimate of what a parser
    would reach before failing (an unclosed ``[[[`` counts its depth).

    >>> json_shape('{"a": [1, "[x]", {}], "b": []}')
    (3, 5)
    """
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    return _depth(_brackets(raw)), _members(_skeleton(raw))


def _unescaped(raw: bytes) -> bytes:
    # an escape pair never ends a string: without them every quote opens or closes one
    return _ESCAPE.sub(b"", raw) if b"\\" in raw else raw


def _brackets(raw: bytes) -> bytes:
    """The brackets of ``raw`` that are structure (outside strings), in order."""
    reduced = _unescaped(raw).translate(None, _NOT_BRACKET_OR_QUOTE)
    # Two adjacent quotes enclose no bracket: dropping them keeps the parity of the quotes
    # before every bracket, so which brackets are inside strings does not change. Most
    # strings hold no bracket, so this leaves no quote at all, in one C pass.
    reduced = reduced.replace(b'""', b"")
    if b'"' in reduced:
        reduced = b"".join(reduced.split(b'"')[::2])
    return reduced


def _skeleton(raw: bytes) -> bytes:
    """``raw`` with every string replaced by ``0`` and no whitespace: the structure only."""
    if b'"' in raw:
        # Strings may hold brackets and commas: with escape pairs gone the pieces between
        # quotes alternate structure / string. Whatever follows an unterminated string is
        # string text for the parser, never structure.
        raw = b"0".join(_unescaped(raw).split(b'"')[::2])
    return b"".join(raw.split())


def _members(skeleton: bytes) -> int:
    # Each non-empty container has (commas + 1) members; with strings and whitespace gone
    # an empty one is exactly "[]" or "{}".
    openers = skeleton.count(b"[") + skeleton.count(b"{")
    return skeleton.count(b",") + openers - skeleton.count(b"[]") - skeleton.count(b"{}")


def _depth(structure: bytes) -> int:
    brackets = structure.translate(None, _NOT_BRACKET)
    return max(0, max(accumulate(_STEP[c] for c in brackets), default=0))


def _parse_constant(name: str) -> float:
    raise _NumberRefused(f"{name} is not a JSON number (RFC 8259 section 6)")


def _parse_float(literal: str) -> float:
    f = float(literal)
    if not math.isfinite(f):
        raise _NumberRefused(f"{literal[:40]} overflows a double")
    return f


def _parse_int(literal: str) -> int:
    # JSON forbids leading zeros, so a longer literal is out of range: no int() of 100k digits.
    if len(literal) <= _INT_DIGITS:
        i = int(literal)
        if INT_MIN <= i <= INT_MAX:
            return i
    shown = literal if len(literal) <= 40 else f"{literal[:20]}... ({len(literal)} digits)"
    raise _NumberRefused(f"integer {shown} outside the signed 64-bit range")


def load_json(payload: bytes | str, *, step: str, device: str | None) -> object:
    """The JSON document of ``payload``, or DecodeError with the limit it broke (module doc).

    Reasons: ``payload_too_large``, ``bad_json`` (not UTF-8/16/32 text, or not JSON),
    ``too_deep``, ``too_many_fields``, ``bad_number``.
    """
    check_payload_size(payload, step=step, device=device)
    raw = _utf8(payload, step, device)
    # Cheap upper bounds first (C-speed counts): most payloads need no measuring.
    openers = raw.count(b"[") + raw.count(b"{")
    if openers > MAX_JSON_DEPTH:
        depth = _depth(_brackets(raw))
        if depth > MAX_JSON_DEPTH:
            raise DecodeError(step, device, TOO_DEEP,
                              f"nesting depth {depth}, more than MAX_JSON_DEPTH={MAX_JSON_DEPTH}")
    if openers + raw.count(b",") > MAX_JSON_MEMBERS:
        members = _members(_skeleton(raw))
        if members > MAX_JSON_MEMBERS:
            raise DecodeError(step, device, TOO_MANY_FIELDS,
                              f"{members} elements and members, more than "
                              f"MAX_JSON_MEMBERS={MAX_JSON_MEMBERS}")
    digits = raw.translate(_DIGITS_AS_ZERO, b"+")
    hooks = {}
    if _INT_RISK in digits:
        hooks["parse_int"] = _parse_int
        if any(r in digits for r in _FLOAT_RISKS):
            hooks["parse_float"] = _parse_float
    elif _FLOAT_RISKS[0] in digits:
        hooks["parse_float"] = _parse_float
    try:
        return json.loads(payload, parse_constant=_parse_constant, **hooks)
    except _NumberRefused as exc:
        raise DecodeError(step, device, BAD_NUMBER, str(exc)) from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise DecodeError(step, device, BAD_JSON, str(exc)[:200]) from None


def _utf8(payload: bytes | str, step: str, device: str | None) -> bytes:
    """The payload as UTF-8 bytes for the scans (json.loads reads UTF-16/32 too, RFC 8259 8.1)."""
    if isinstance(payload, str):
        return payload.encode("utf-8", "surrogatepass")
    raw = bytes(payload)
    encoding = json.detect_encoding(raw)
    if encoding in ("utf-8", "utf-8-sig"):
        return raw  # not validated here: json.loads decodes it
    try:
        return raw.decode(encoding, "surrogatepass").encode("utf-8", "surrogatepass")
    except UnicodeDecodeError as exc:
        raise DecodeError(step, device, BAD_JSON, str(exc)[:200]) from None
