"""Normalisation at the edge: canonical units, plausibility, device clock sanity, patient.

After this step every reading carries its signal's canonical UCUM unit, a
physically possible value and an event time that can be trusted to within the
configured skew; anything else is an error naming the step and the reason.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol

from vitalstream.errors import PlausibilityError, UnitError, VitalstreamError
from vitalstream.model import Quality, RawReading, Reading
from vitalstream.signals import CATALOGUE, Signal

_SIGNALS = {s.value: s for s in Signal}
PatientOf = Callable[[RawReading], "str | None"]


class PatientResolver(Protocol):
    def __call__(self, raw: RawReading) -> str | None: ...


def patient_from_payload(raw: RawReading) -> str:
    """Until a device registry is configured: the payload's patient, else the device id."""
    return raw.patient if raw.patient is not None else raw.device


@dataclass(frozen=True, slots=True)
class Normaliser:
    """Config for the normalisation step.

    ``max_clock_skew_ns``: a device time further than this from the receive time
    is replaced by the receive time and flagged ``CLOCK_CORRECTED``. ``None``
    disables the check and trusts every device time, as replays of recorded data need.

    ``backfill_after_ns``: a reading measured longer than this before it was received
    (a phone uploading yesterday) is back-fill: it keeps its own time and is flagged
    ``HISTORICAL``, so it updates the stores and aggregates but never pages anyone as
    if live, up to ``backfill_max_ns`` old. Between the skew and ``backfill_after_ns``
    a reading is clock-corrected as before: a device clock a few minutes behind must
    still alert, and it cannot be told from a short upload. ``None``: no back-fill,
    every old reading up to the past limit is corrected.

    The extremes are refused (a ``VitalstreamError``, so a dead letter), not corrected:
    a device time more than ``future_limit_ns`` ahead of the receive time
    (``time_in_future``) or more than ``past_limit_ns`` behind it (``time_too_old``, an
    RTC reset to 1970 or 2000, or a week-old queue) says the device's clock, or its
    buffer, cannot be trusted: stamping such readings "now" would store and page on
    values measured at an unknown time. ``None`` switches a limit off (corrected as
    any skew). The limits apply only with the skew check on.

    >>> n = Normaliser(max_clock_skew_ns=None)
    >>> r = n.normalise(RawReading("d1", "p1", "body_temp", 98.6, "[degF]", 0), recv_ns=0)
    >>> r.signal.value, round(r.value, 9), r.unit
    ('body_temp', 37.0, 'Cel')
    >>> day = 86_400 * 10**9
    >>> r = Normaliser().normalise(RawReading("d1", "p1", "heart_rate", 61, None, day), 2 * day)
    >>> r.event_ns == day, r.quality.name
    (True, 'HISTORICAL')
    >>> Normaliser().normalise(RawReading("d1", "p1", "heart_rate", 61, None, 0), 30 * day)
    Traceback (most recent call last):
    vitalstream.errors.VitalstreamError: normalise [device d1]: time_too_old: device time 2592000.000 s before receipt (limit 604800 s)
    """

    max_clock_skew_ns: int | None = 300 * 1_000_000_000
    backfill_after_ns: int | None = 3600 * 1_000_000_000
    backfill_max_ns: int = 7 * 86_400 * 1_000_000_000
    future_limit_ns: int | None = 86_400 * 1_000_000_000
    past_limit_ns: int | None = 7 * 86_400 * 1_000_000_000

    def __post_init__(self) -> None:
        skew = self.max_clock_skew_ns
        if skew is None:
            return
        for name in ("future_limit_ns", "past_limit_ns"):
            limit = getattr(self, name)
            if limit is not None and limit < skew:
                raise ValueError(f"normaliser: {name} {limit} is below max_clock_skew_ns {skew}")
        past = self.past_limit_ns
        if self.backfill_after_ns is not None and past is not None and past < self.backfill_max_ns:
            # a back-fill horizon the limit cuts short would be a silent second setting
            raise ValueError(f"normaliser: past_limit_ns {past} is below backfill_max_ns "
                             f"{self.backfill_max_ns}")

    def normalise(self, raw: RawReading, recv_ns: int,
                  patient_of: PatientResolver = patient_from_payload) -> Reading | None:
        """The normalised reading, or None when the patient is unknown (quarantine)."""
        signal = _SIGNALS.get(raw.signal)  # a dict lookup: Signal(...) costs ~1 us a reading
        if signal is None:
            raise UnitError("normalise", raw.device, "unknown_signal", repr(raw.signal))
        sp = CATALOGUE[signal]
        try:
            value = sp.to_canonical(raw.value, raw.unit)
        except KeyError:
            raise UnitError("normalise", raw.device, "unknown_unit",
                            f"{raw.unit!r} for {signal.value}") from None
        if not sp.plausible(value):
            raise PlausibilityError("plausibility", raw.device, "implausible",
                                    f"{signal.value}={value:g} {sp.unit} outside "
                                    f"[{sp.plausible_min:g}, {sp.plausible_max:g}]")
        event_ns, quality = raw.event_ns, raw.quality
        skew = self.max_clock_skew_ns
        if skew is not None and abs(event_ns - recv_ns) > skew:
            after = self.backfill_after_ns
            age = recv_ns - event_ns
            if age < 0:
                if self.future_limit_ns is not None and -age > self.future_limit_ns:
                    raise _time_error(raw.device, "time_in_future", "after", -age,
                                      self.future_limit_ns)
            elif self.past_limit_ns is not None and age > self.past_limit_ns:
                raise _time_error(raw.device, "time_too_old", "before", age, self.past_limit_ns)
            if after is not None and after < age <= self.backfill_max_ns:
                quality = quality | Quality.HISTORICAL
            else:
                event_ns, quality = recv_ns, quality | Quality.CLOCK_CORRECTED
        patient = patient_of(raw)
        if patient is None:
            return None
        return Reading(patient, raw.device, signal, value, sp.unit, event_ns, recv_ns,
                       raw.source, quality)


def _time_error(device: str, reason: str, side: str, by_ns: int, limit_ns: int) -> VitalstreamError:
    return VitalstreamError("normalise", device, reason,
                            f"device time {by_ns / 1e9:.3f} s {side} receipt "
                            f"(limit {limit_ns / 1e9:g} s)")
