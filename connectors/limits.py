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
_ESCAPE = re.compile(r"\\.", re.S)  # an escape pair, removed before strings are found
_STRING = re.compile(r'"[^"]*"')  # with escapes gone a string has no quote inside
_WS = re.compile(r"[ \t\n\r]+")  # the four whitespace characters of RFC 8259
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


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


def json_shape(text: str) -> tuple[int, int]:
    """(deepest nesting, array elements + object members) of JSON ``text``, without recursion.

    Exact for valid JSON; for broken JSON an over-estimate of what a parser
    would reach before failing (an unclosed ``[[[`` counts its depth).

    >>> json_shape('{"a": [1, "[x]", {}], "b": []}')
    (3, 5)
    """
    openers = text.count("[") + text.count("{")
    if openers == 0:
        return 0, 0
    # Strings may hold brackets and commas: drop escapes, then replace each string by a
    # one-character scalar so "[\"\"]" stays a one-element array. Whatever follows an
    # unterminated string is string text for the parser, never structure.
    skeleton = _STRING.sub("0", _ESCAPE.sub("", text)) if '"' in text else text
    cut = skeleton.find('"')
    if cut >= 0:
        skeleton = skeleton[:cut]
    skeleton = _WS.sub("", skeleton)
    openers = skeleton.count("[") + skeleton.count("{")
    # Each non-empty container has (commas + 1) members; after whitespace is gone an empty
    # one is exactly "[]" or "{}".
    members = skeleton.count(",") + openers - skeleton.count("[]") - skeleton.count("{}")
    return _depth(skeleton), members


def _depth(skeleton: str) -> int:
    brackets = _NOT_BRACKET.sub("", skeleton)
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
    if isinstance(payload, (bytes, bytearray)):
        try:  # what json.loads does with bytes (RFC 8259 8.1 and the BOM-less UTF-16/32)
            text = bytes(payload).decode(json.detect_encoding(payload), "surrogatepass")
        except UnicodeDecodeError as exc:
            raise DecodeError(step, device, BAD_JSON, str(exc)[:200]) from None
    else:
        text = payload
    # Cheap upper bounds first (C-speed counts): most payloads need no measuring.
    openers = text.count("[") + text.count("{")
    depth, members = (json_shape(text) if openers > MAX_JSON_DEPTH
                      or openers + text.count(",") > MAX_JSON_MEMBERS else (0, 0))
    if depth > MAX_JSON_DEPTH:
        raise DecodeError(step, device, TOO_DEEP,
                          f"nesting depth {depth}, more than MAX_JSON_DEPTH={MAX_JSON_DEPTH}")
    if members > MAX_JSON_MEMBERS:
        raise DecodeError(step, device, TOO_MANY_FIELDS,
                          f"{members} elements and members, more than "
                          f"MAX_JSON_MEMBERS={MAX_JSON_MEMBERS}")
    try:
        return json.loads(text, parse_constant=_parse_constant, parse_float=_parse_float,
                          parse_int=_parse_int)
    except _NumberRefused as exc:
        raise DecodeError(step, device, BAD_NUMBER, str(exc)) from None
    except ValueError as exc:  # JSONDecodeError is a ValueError
        raise DecodeError(step, device, BAD_JSON, str(exc)[:200]) from None
