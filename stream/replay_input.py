"""Input of ``vitalstream replay FILE``: a recorded file -> raw readings in event-time order.

A replay feeds the pipeline readings that were recorded earlier, so each line is
read the way the live path reads the same payload: the connectors' own decoders
do the work (``decode_senml``, ``decode_json``, ``decode_omh_records``), and the
output is ``RawReading``s, like every connector's. Unit conversion, plausibility,
identifier checks and device -> patient resolution stay downstream (stage A), so
a replayed reading meets exactly the checks a live one does.

Bad input never raises: a bad line (or a bad record inside a good line) is
counted under its reason in ``ReplayInput.bad`` (the ``reason`` of the
``VitalstreamError`` the decoder raised, or one of this module's: ``bad_json``,
``bad_csv_row``, ``missing_device``, ``relative_time``...), and the first five are
kept as ``"line N: reason: detail"``. Only what makes the whole file unreadable
raises ``ReplayFormatError``: an unknown format, an unreadable file, a bad CSV
header. Blank lines and lines starting with ``#`` are skipped, in every format.

Identity. ``device`` is the identity the pipeline resolves to a patient, as live
(the device id stands for the patient unless a registry is configured);
``patient`` is None unless the payload itself names one (``patient`` in native
JSON, ``header.user_id`` in Open mHealth), as the live codecs do. The optional
``device`` argument plays the MQTT topic's part: given, every line is read as if
it had arrived on that device's topic (a line naming another device is then
``identity_mismatch``, an Open mHealth ``source_name`` is overridden), exactly
as live; not given, every line must name its own device.

Formats (``fmt``), one item per line:

``senml``: one SenML pack (RFC 8428 JSON array) per line; the device is the
device part of the first resolved name (``bn + n`` up to its last ``:`` or ``/``),
i.e. the base name without its trailing ``:``::

    [{"bn": "dev-7:", "bt": 1795600800, "bu": "/min", "n": "heart_rate", "v": 71},
     {"n": "heart_rate", "t": 1, "v": 72}]

Times must be absolute: RFC 8428 reads a time below 2**28 s as relative to
"now", and a replay has no now that would make it mean the recorded instant, so
such a record is bad (``relative_time``) rather than stamped at replay time.

``json``: the native JSON of the ``json`` MQTT topic (see
``vitalstream.connectors.codecs``), one object per line; its ``device`` field
names the device (``missing_device`` without it, unless ``device`` is given)::

    {"device": "dev-7", "readings": [{"signal": "heart_rate", "value": 71,
                                      "t": "2026-11-25T10:00:00Z"}]}

``csv``: header ``patient,time_s,signal,value,unit`` (any order), or ``time``
(RFC 3339 with a zone) in place of ``time_s`` (seconds since the epoch, may be
fractional; converted exactly to the nanosecond). The ``patient`` column is the
device id (it is what a live device would publish under), ``patient`` of the
reading stays None; ``unit`` may be empty (canonical unit assumed); ``value``
must be a finite number. A header with a missing, unknown or repeated column
is a ``ReplayFormatError``; a row with the wrong number of fields is
``bad_csv_row``, an empty patient or signal ``missing_field``, a value that is
not a finite number ``bad_value``, an unreadable time ``bad_time``::

    patient,time_s,signal,value,unit
    p-7,1795600800.25,heart_rate,71,/min

``omh``: one Open mHealth data point per line (``decode_omh_records``, the
device is ``header.acquisition_provenance.source_name`` unless ``device`` is
given, as for ``vitalstream import``). Readings are *not* flagged HISTORICAL as
an import's are: a replay exists to see what the rules would have alerted.
Physical-activity points carry no reading; they are counted in
``ReplayInput.skipped["activity_episode"]`` (the import skips them too).

>>> r = read_replay(["patient,time,signal,value,unit",
...                  "p-1,2026-11-25T10:00:01Z,heart_rate,72,/min",
...                  "# a comment",
...                  "p-1,2026-11-25T10:00:00Z,heart_rate,71,",
...                  "p-1,yesterday,heart_rate,70,/min"], "csv")
>>> [(x.device, x.patient, x.value, x.unit) for x in r.readings]
[('p-1', None, 71.0, None), ('p-1', None, 72.0, '/min')]
>>> r.bad, r.lines
({'bad_time': 1}, 5)
>>> guess_format("night.senml.json"), guess_format("x.csv"), guess_format("x.txt")
('senml', 'csv', None)
"""

from __future__ import annotations

import csv
import gc
import math
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from operator import attrgetter

from vitalstream.connectors.codecs import decode_json, decode_senml
from vitalstream.connectors.omh import ActivityEpisode, decode_omh_records
from vitalstream.connectors.omh_schemas import default_schemas
from vitalstream.connectors.limits import load_json
from vitalstream.errors import VitalstreamError
from vitalstream.model import Quality, RawReading
from vitalstream.timeutil import parse_iso8601_ns

STEP = "replay"
FORMATS = ("senml", "json", "csv", "omh")
MAX_EXAMPLES = 5
EXAMPLE_CHARS = 200
NS_PER_S = 1_000_000_000
_NS = Decimal(NS_PER_S)
# RFC 8428 4.5.3: a SenML time below 2**28 s is relative. Decoded against recv_ns=0,
# such a record lands below this instant and no absolute time does.
_RELATIVE_LIMIT_NS = 2**28 * NS_PER_S

# Longest suffix wins (checked longest first): ".omh.json" is omh, not json.
_SUFFIXES = sorted({".senml": "senml", ".senml.json": "senml", ".senmlj": "senml",
                    ".jsonl": "json", ".json": "json", ".ndjson": "json", ".csv": "csv",
                    ".omh": "omh", ".omh.json": "omh", ".omh.jsonl": "omh"}.items(),
                   key=lambda kv: -len(kv[0]))
_CSV_COLUMNS = ("patient", "signal", "value", "unit")


class ReplayFormatError(VitalstreamError):
    """The replay input cannot be read at all (unknown format, unreadable file, bad header)."""


@dataclass(slots=True)
class ReplayInput:
    """Readings of a replay file in event-time order, and what could not be read.

    ``lines`` counts every line read, header, blank and comment lines included.
    ``skipped`` counts valid items that carry no reading (Open mHealth activity).
    """

    readings: list[RawReading] = field(default_factory=list)
    bad: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)
    lines: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def add_bad(self, line: int, reason: str, detail: str) -> None:
        self.bad[reason] = self.bad.get(reason, 0) + 1
        if len(self.examples) < MAX_EXAMPLES:
            text = f"line {line}: {reason}: {detail}"
            self.examples.append(text if len(text) <= EXAMPLE_CHARS
                                 else text[:EXAMPLE_CHARS - 3] + "...")


def guess_format(path: str) -> str | None:
    """The format a file name's extension means (case-insensitive), or None."""
    name = path.lower()
    return next((fmt for suffix, fmt in _SUFFIXES if name.endswith(suffix)), None)


class _Position:
    """The 1-based number of the last line read (blank and comment lines included)."""

    __slots__ = ("number",)

    def __init__(self) -> None:
        self.number = 0


def _data_lines(lines: Iterable[str], pos: _Position) -> Iterator[str]:
    """The lines that carry data (not blank, not ``#``); ``pos`` follows every line read.

    A generator, not an iterator class: resuming one is cheaper than a Python
    ``__next__`` call, and the csv reader pulls every line through it.
    """
    for number, line in enumerate(lines, 1):
        pos.number = number
        s = line.lstrip()  # leading whitespace and, for a blank line, the newline
        if s and s[0] != "#":
            yield line


def read_replay(lines: Iterable[str], fmt: str, device: str | None = None) -> ReplayInput:
    """Raw readings of ``lines`` in ``fmt`` (see the module docstring), sorted by event time.

    The sort is stable: readings with the same event time keep their file order.
    ``device``, when given, is the device every line is read as coming from.
    """
    if fmt not in FORMATS:
        raise ReplayFormatError(STEP, None, "unknown_format",
                                f"{fmt!r} (known: {', '.join(FORMATS)})")
    out, pos = ReplayInput(), _Position()
    src = _data_lines(lines, pos)
    if fmt == "csv":
        _read_csv_paused(src, pos, out)
    else:
        read_line = {"senml": _senml_line, "json": _json_line, "omh": _omh_line}[fmt]
        for line in src:
            read_line(line, pos.number, device, out)
    out.lines = pos.number
    out.readings.sort(key=attrgetter("event_ns"))
    return out


def read_replay_path(path: str, fmt: str | None = None, device: str | None = None) -> ReplayInput:
    """``read_replay`` of a file (``-`` is standard input); ``fmt`` None guesses from the name."""
    if fmt is None:
        fmt = guess_format(path)
        if fmt is None:
            raise ReplayFormatError(STEP, None, "unknown_format",
                                    f"{path}: cannot tell the format from the name "
                                    f"(give one of {', '.join(FORMATS)})")
    try:
        if path == "-":
            return read_replay(sys.stdin, fmt, device)
        # newline="" as the csv module wants; utf-8-sig drops a spreadsheet's BOM
        with open(path, encoding="utf-8-sig", newline="") as f:
            return read_replay(f, fmt, device)
    except (OSError, UnicodeDecodeError) as exc:
        raise ReplayFormatError(STEP, None, "unreadable", f"{path}: {exc}") from None


# --- JSON formats ----------------------------------------------------------------

def _add(decoded: list, line: int, out: ReplayInput) -> None:
    for item in decoded:
        if isinstance(item, VitalstreamError):
            out.add_bad(line, item.reason, item.detail)
        else:
            out.readings.append(item)


def _load(text: str, line: int, out: ReplayInput) -> object:
    # the decoders' guarded loader: the same limits (size, depth, members, numbers) and
    # reasons for a replayed line as for a live message, and no recursion on deep nesting
    try:
        return load_json(text, step="replay", device=None)
    except VitalstreamError as exc:
        out.add_bad(line, exc.reason, exc.detail)
    return _BAD


_BAD = object()
_TOO_DEEP = "nested too deeply to parse"


def _senml_device(pack: list) -> str | None:
    """The device the first named record of a pack names (as ``decode_senml`` splits names)."""
    bn = ""
    for rec in pack:
        if not isinstance(rec, dict):
            continue
        if isinstance(rec.get("bn"), str):
            bn = rec["bn"]
        n = rec.get("n", "")
        name = bn + (n if isinstance(n, str) else "")
        cut = max(name.rfind(":"), name.rfind("/"))
        if cut >= 0:
            return name[:cut] or None
    return None


def _senml_line(text: str, line: int, device: str | None, out: ReplayInput) -> None:
    # Parsed twice (here for the device, again by the decoder): the decoder takes
    # bytes, and reusing it keeps one reading of SenML in the project.
    if device is None:
        pack = _load(text, line, out)
        if pack is _BAD:
            return
        if not isinstance(pack, list):
            out.add_bad(line, "missing_field", "SenML pack is not an array")
            return
        device = _senml_device(pack)
        if device is None:
            out.add_bad(line, "missing_device", "no base name or name gives the device")
            return
    try:
        decoded = decode_senml(text.encode(), device, 0)
    except VitalstreamError as err:
        out.add_bad(line, err.reason, err.detail)
        return
    except RecursionError:  # the decoder's json.loads on absurdly deep nesting
        out.add_bad(line, "bad_json", _TOO_DEEP)
        return
    for item in decoded:
        if isinstance(item, RawReading) and item.event_ns < _RELATIVE_LIMIT_NS:
            out.add_bad(line, "relative_time",
                        f"{item.signal}: t={item.event_ns / NS_PER_S:g} s is relative "
                        "(below 2**28 s, RFC 8428 4.5.3): a replay needs absolute times")
        elif isinstance(item, VitalstreamError):
            out.add_bad(line, item.reason, item.detail)
        else:
            out.readings.append(item)


def _json_line(text: str, line: int, device: str | None, out: ReplayInput) -> None:
    if device is None:
        doc = _load(text, line, out)
        if doc is _BAD:
            return
        if not isinstance(doc, dict):
            out.add_bad(line, "missing_field", "line is not a JSON object")
            return
        claimed = doc.get("device")
        if claimed is None or claimed == "":
            out.add_bad(line, "missing_device", "no 'device' field")
            return
        if not isinstance(claimed, str):
            out.add_bad(line, "bad_value", f"device={claimed!r}")
            return
        device = claimed
    try:
        # recv_ns is unused by the json codec (its times are always absolute)
        _add(decode_json(text.encode(), device, 0), line, out)
    except VitalstreamError as err:
        out.add_bad(line, err.reason, err.detail)
    except RecursionError:
        out.add_bad(line, "bad_json", _TOO_DEEP)


def _omh_line(text: str, line: int, device: str | None, out: ReplayInput) -> None:
    try:
        items = decode_omh_records(text, device=device, recv_ns=0, quality=Quality.OK,
                                   schemas=default_schemas())
    except VitalstreamError as err:
        out.add_bad(line, err.reason, err.detail)
        return
    except RecursionError:
        out.add_bad(line, "bad_json", _TOO_DEEP)
        return
    for item in items:
        if isinstance(item, ActivityEpisode):
            out.skipped["activity_episode"] = out.skipped.get("activity_episode", 0) + 1
        else:
            out.readings.append(item)


# --- CSV ---------------------------------------------------------------------------

def _header(row: list[str]) -> tuple[dict[str, int], str]:
    """Column -> index, and the time column's name; ReplayFormatError for a bad header."""
    names = [c.strip().lower() for c in row]
    index = {name: i for i, name in enumerate(names)}
    times = [t for t in ("time_s", "time") if t in index]
    expected = "expected patient,time_s,signal,value,unit (or time for time_s)"
    problem = None
    if len(index) != len(names):
        problem = "a column is repeated"
    elif len(times) != 1:
        problem = "both time and time_s" if times else "no time_s or time column"
    elif missing := [c for c in _CSV_COLUMNS if c not in index]:
        problem = f"missing {', '.join(missing)}"
    elif extra := [c for c in names if c not in _CSV_COLUMNS and c != times[0]]:
        problem = f"unknown column {', '.join(extra)}"
    if problem is not None:
        raise ReplayFormatError(STEP, None, "bad_header",
                                f"csv header {','.join(row)!r}: {problem}; {expected}")
    return index, times[0]


def _seconds_ns(text: str) -> int:
    """Exact integer ns of decimal seconds (rounded half-even below the nanosecond).

    Not float: a float of ~1.8e9 s resolves only ~0.24 us. The common plain form
    (digits, optional fraction of up to 9 digits) is read with int(); anything else
    (a sign, an exponent, more digits) goes through Decimal.
    """
    whole, _, frac = text.partition(".")
    if whole.isdigit() and len(frac) <= 9 and (frac.isdigit() or not frac):
        try:
            return int(whole) * NS_PER_S + (int(frac.ljust(9, "0")) if frac else 0)
        except ValueError:  # isdigit() is true of digits int() refuses (superscripts)
            pass
    try:
        d = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a number of seconds: {text!r}") from None
    if not d.is_finite():
        raise ValueError(f"not a finite number of seconds: {text!r}")
    return int((d * _NS).to_integral_value())


def _read_csv_paused(src: Iterator[str], pos: _Position, out: ReplayInput) -> None:
    """``_read_csv`` with the cyclic garbage collector paused (and restored as it was).

    A csv parse allocates only acyclic objects (rows, strings, readings), so a
    collection frees nothing, yet each one rescans the growing list of readings:
    that doubled the time of a million-row file. The JSON formats are not paused:
    their decoders' errors carry tracebacks, which are cycles to collect.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        _read_csv(src, pos, out)
    finally:
        if paused:
            gc.enable()


def _read_csv(src: Iterator[str], pos: _Position, out: ReplayInput) -> None:
    reader = csv.reader(src, skipinitialspace=True)
    try:
        head = next(reader)
    except StopIteration:
        return  # no header, no data: nothing to replay (the caller sees zero readings)
    except csv.Error as exc:
        raise ReplayFormatError(STEP, None, "bad_header", f"csv header: {exc}") from None
    index, time_col = _header(head)
    width = len(head)
    ip, it, isg, iv, iu = (index[c] for c in ("patient", time_col, "signal", "value", "unit"))
    to_ns = _seconds_ns if time_col == "time_s" else parse_iso8601_ns
    append, bad, isfinite, ok = out.readings.append, out.add_bad, math.isfinite, Quality.OK
    # One-entry memo: a monitor's export repeats each instant for every signal
    # sampled at it, and the ISO parser is the dearest step of a row (~4 us).
    last_text, last_ns = None, 0
    while True:
        try:
            for row in reader:  # a for loop while rows are good: the hot path
                n = pos.number
                if len(row) != width:
                    bad(n, "bad_csv_row",
                        f"{len(row)} fields, the header has {width}: {','.join(row)}")
                    continue
                device, signal = row[ip].strip(), row[isg].strip()
                if not device or not signal:
                    bad(n, "missing_field", "empty patient" if not device else "empty signal")
                    continue
                try:
                    value = float(row[iv])
                except ValueError:
                    bad(n, "bad_value", f"{signal}: value={row[iv]!r}")
                    continue
                if not isfinite(value):
                    bad(n, "bad_value", f"{signal}: value={row[iv]!r} is not finite")
                    continue
                text = row[it].strip()
                if text != last_text:
                    try:
                        last_ns = to_ns(text)
                    except ValueError as exc:
                        bad(n, "bad_time", str(exc))
                        continue
                    last_text = text
                append(RawReading(device, None, signal, value, row[iu].strip() or None,
                                  last_ns, ok, "csv"))
            return
        except csv.Error as exc:  # e.g. a NUL byte; the reader goes on with the next line
            bad(pos.number, "bad_csv_row", str(exc))
