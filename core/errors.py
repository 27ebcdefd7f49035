"""One root error class for the project.

Every error names the step that raised it, the device concerned (when known) and
a short machine-readable reason, because a dead letter or a log line that says
only "ValueError" is of no use to the integrator debugging a gateway.
"""

from __future__ import annotations


class VitalstreamError(Exception):
    """Root of every error vitalstream raises on purpose.

    >>> e = DecodeError("decode", "dev-1", "bad_json", "Expecting value at 0")
    >>> str(e)
    'decode [device dev-1]: bad_json: Expecting value at 0'
    >>> isinstance(e, VitalstreamError)
    True
    """

    def __init__(self, step: str, device: str | None, reason: str, detail: str = "") -> None:
        self.step = step
        self.device = device
        self.reason = reason
        self.detail = detail
        super().__init__(self._message())

    def _message(self) -> str:
        where = f"{self.step} [device {self.device}]" if self.device else self.step
        tail = f": {self.detail}" if self.detail else ""
        return f"{where}: {self.reason}{tail}"


class DecodeError(VitalstreamError):
    """A payload could not be parsed into readings."""


class UnitError(VitalstreamError):
    """A value carries a unit that cannot be converted to the signal's canonical unit."""


class PlausibilityError(VitalstreamError):
    """A value is outside the physiologically possible range for its signal."""


class IdentityError(VitalstreamError):
    """A device tried to speak for another device, or cannot be mapped to a patient."""


class ConfigError(VitalstreamError):
    """A configuration file or option is invalid."""


class SinkError(VitalstreamError):
    """A sink could not write and could not spool."""
