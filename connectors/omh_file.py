"""Open mHealth files: ``import_file`` (one data point, a JSON array, or JSON lines)
and ``export_points`` (readings back to data points, blood pressure paired).

Import never raises for a bad item: it becomes a ``DeadLetter`` naming the item
(``item N: ...``), so one broken point in a file does not lose the others.
Import yields raw readings, like every connector: the caller normalises them
(``Normaliser(max_clock_skew_ns=None)``, since a back-fill is old by design).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from vitalstream.connectors.omh import (
    ActivityEpisode,
    OmhEncodeError,
    _fail,
    _reject_constant,
    decode_omh_records,
    encode_omh,
    encode_omh_blood_pressure,
)
from vitalstream.connectors.omh_schemas import OmhSchemas, default_schemas
from vitalstream.errors import DecodeError
from vitalstream.model import DeadLetter, Quality, RawReading, Reading
from vitalstream.clock import Clock, SystemClock
from vitalstream.signals import Signal

Imported = RawReading | ActivityEpisode | DeadLetter


def _items(text: str) -> Iterator[tuple[str, object | None, str | None]]:
    """(raw text, parsed JSON or None, parse error) for each data point of a file."""
    try:
        doc = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # a whole file may exceed a message's limits,
        # so not connectors.limits' loader; absurd nesting is a dead letter, not a crash
        lines = [ln for ln in text.splitlines() if ln.strip()]
        # JSON lines: every line is an object of its own; a pretty-printed document
        # that fails to parse is one dead letter, not one per line.
        if len(lines) > 1 and all(ln.strip()[:1] == "{" and ln.strip()[-1:] == "}" for ln in lines):
            for ln in lines:
                try:
                    yield ln, json.loads(ln, parse_constant=_reject_constant), None
                except (ValueError, RecursionError) as line_exc:
                    yield ln, None, str(line_exc)
        else:
            yield text, None, str(exc)
        return
    if isinstance(doc, list):
        for item in doc:
            yield json.dumps(item), item, None
    else:
        yield text, doc, None


def import_file(path: str | Path, *, device: str | None = None, clock: Clock | None = None,
                quality: Quality = Quality.HISTORICAL,
                schemas: OmhSchemas | None = None) -> Iterator[Imported]:
    """Raw readings, activity episodes and dead letters of a file of data points.

    The file holds one data point, a JSON array of them, or JSON lines. Each
    point that cannot be decoded becomes a ``DeadLetter`` (step ``omh_decode``,
    topic ``file:<path>``, detail prefixed with its 0-based item index) so one
    bad point does not stop the import. Readings are flagged HISTORICAL by
    default: an import is a back-fill, and a back-fill must not page anyone.
    ``clock.now_ns()`` when the item is decoded is the ``recv_ns`` of its dead
    letters and activity episodes; raw readings carry no receive time (the
    normaliser is given one). An unreadable file raises
    ``DecodeError(step="omh_import", reason="unreadable_file")``.
    """
    schemas = schemas or default_schemas()
    clock = clock or SystemClock()
    topic = f"file:{path}"
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DecodeError("omh_import", device, "unreadable_file", f"{path}: {exc}") from None
    for index, (raw, doc, error) in enumerate(_items(text)):
        recv_ns = clock.now_ns()
        try:
            if error is not None:
                raise _fail(device, "bad_json", error)
            yield from decode_omh_records(doc, device=device, recv_ns=recv_ns,  # type: ignore[arg-type]
                                          quality=quality, schemas=schemas)
        except DecodeError as exc:
            yield DeadLetter(step=exc.step, reason=exc.reason, detail=f"item {index}: {exc.detail}",
                             topic=topic, payload=raw.encode("utf-8"), device=exc.device,
                             recv_ns=recv_ns)


def export_points(readings: Iterable[Reading], **kwargs: object) -> Iterator[dict]:
    """Data points for readings, pairing systolic with diastolic of the same instant.

    Keyword arguments go to the encoders. An unpaired pressure raises
    ``OmhEncodeError`` (``needs_pair``) once the input is exhausted.
    """
    pending: dict[tuple, Reading] = {}
    for r in readings:
        signal = Signal(r.signal)
        if signal not in (Signal.BP_SYSTOLIC, Signal.BP_DIASTOLIC):
            yield encode_omh(r, **kwargs)  # type: ignore[arg-type]
            continue
        key = (r.patient, r.device, r.event_ns, r.source)
        other = pending.pop(key, None)
        if other is None or Signal(other.signal) is signal:
            if other is not None:
                raise OmhEncodeError("omh_encode", r.device, "needs_pair", f"two {signal} at {key}")
            pending[key] = r
            continue
        sys_r, dia_r = (r, other) if signal is Signal.BP_SYSTOLIC else (other, r)
        yield encode_omh_blood_pressure(sys_r, dia_r, **kwargs)  # type: ignore[arg-type]
    if pending:
        first = next(iter(pending.values()))
        raise OmhEncodeError("omh_encode", first.device, "needs_pair",
                             f"{len(pending)} pressure reading(s) without their pair")
