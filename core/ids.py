"""Device and patient identifiers: what a valid one looks like.

An identifier becomes an InfluxDB tag value, a Redis key part and a label in
dashboards, and it arrives from the outside (an MQTT topic level, a payload
field, a registry entry). ``check_identifier`` accepts only a *bounded printable
token*:

- 1 to ``MAX_ID_LEN`` (128) characters;
- every character printable (``str.isprintable``: no control, format,
  separator, surrogate, private-use or unassigned code point), so no newline,
  tab, NUL, zero-width or bidi-override character;
- no space (nor any other whitespace: Unicode whitespace other than the ASCII
  space is already not printable);
- none of ``\\ " ' ` ``: a backslash cannot be written losslessly in a
  line-protocol tag (influxdb-client does not escape it, and InfluxDB and
  VictoriaMetrics read ``\\\\`` differently), and quotes delimit string
  literals in InfluxQL, Flux and PromQL queries where ids are pasted.

Everything else is allowed, including non-ASCII letters, so the ids devices use
today stay valid: BLE MACs ``AA:BB:CC:DD:EE:01``, ``urn:dev:ow:10e2073a01080063``,
``p-7``, ``dev_7``, ``cuff#u1``, ``p0042``, ``site/a``. An invalid id is a dead
letter with reason ``bad_identifier``; the line-protocol writer still escapes
every character, this check is the first of two layers.

>>> check_identifier("device", "AA:BB:CC:DD:EE:01")
'AA:BB:CC:DD:EE:01'
>>> is_identifier("p\\nvitals,patient=evil value=1"), is_identifier(""), is_identifier("a b")
(False, False, False)
"""

from __future__ import annotations

import re

from vitalstream.errors import IdentityError

MAX_ID_LEN = 128

# Printable but refused (see the module doc): space, backslash and quote characters.
_REFUSED = re.compile(r"[ \\\"'`]")


def is_identifier(value: object) -> bool:
    """True when ``value`` is a bounded printable token (see the module doc)."""
    return (type(value) is str and 0 < len(value) <= MAX_ID_LEN and value.isprintable()
            and _REFUSED.search(value) is None)


def check_identifier(kind: str, value: object, device: str | None = None) -> str:
    """``value`` if it is a valid ``kind`` ("device", "patient") id, else IdentityError.

    ``device`` is the device the error is reported against; the refused value is
    shown in the detail, shortened, so a megabyte-long id does not make a
    megabyte-long detail (the payload keeps it whole).
    """
    if is_identifier(value):
        return value  # type: ignore[return-value]
    if type(value) is not str:
        why = f"not a string: {type(value).__name__}"
    elif not value:
        why = "empty"
    elif len(value) > MAX_ID_LEN:
        why = f"{len(value)} characters, more than {MAX_ID_LEN}"
    else:
        bad = next(c for c in value if not c.isprintable() or _REFUSED.match(c))
        why = f"character U+{ord(bad):04X} not allowed"
    shown = repr(value) if type(value) is not str else repr(value[:64]) + ("..." if len(value) > 64 else "")
    raise IdentityError("identity", device, "bad_identifier", f"{kind} id {shown}: {why}")
