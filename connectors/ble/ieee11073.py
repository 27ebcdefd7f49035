"""ISO/IEEE 11073-20601 SFLOAT (16-bit) and FLOAT (32-bit) medical floats.

Both are ``mantissa x 10**exponent`` with two's-complement fields and no bias:

- SFLOAT: exponent = high 4 bits, mantissa = low 12 bits.
- FLOAT:  exponent = high 8 bits, mantissa = low 24 bits.

A handful of whole bit patterns (exponent 0, mantissa at the edge of its range)
are *special values*: NaN, NRes (not at this resolution), +INF, -INF and
reserved. They say "there is no measurement", so they are returned as a
``Special`` marker and never as a Python float: a ``float('nan')`` would slip
through arithmetic and comparisons unnoticed. SFLOAT 0x17FF is an ordinary
number (2047 x 10^1), not NaN: only the exact patterns are special.

The float is built from its decimal text (``float("1000e-1")``) rather than
``m * 10.0**e``, because ``10.0**-1`` is not exactly 0.1 and the product would
come out as 100.00000000000001 instead of the decimal the device meant.
"""

from __future__ import annotations

from enum import Enum

SFLOAT_OCTETS = 2
FLOAT_OCTETS = 4


class Special(str, Enum):
    """A value that is not a number. A ``str`` subclass so that it compares equal
    to, and serialises to JSON as, the names used in the reference vectors."""

    NAN = "NaN"
    NRES = "NRes"
    POS_INF = "+INF"
    NEG_INF = "-INF"
    RESERVED = "reserved"
    # Weight Scale's "Measurement Unsuccessful" (weight 0xFFFF) is not an IEEE
    # 11073 pattern, but it means the same thing to a consumer: no number here.
    UNSUCCESSFUL = "unsuccessful"

    def __str__(self) -> str:
        return self.value


SFLOAT_SPECIALS: dict[int, Special] = {
    0x07FF: Special.NAN,
    0x0800: Special.NRES,
    0x07FE: Special.POS_INF,
    0x0802: Special.NEG_INF,
    0x0801: Special.RESERVED,
}

FLOAT_SPECIALS: dict[int, Special] = {
    0x007FFFFF: Special.NAN,
    0x00800000: Special.NRES,
    0x007FFFFE: Special.POS_INF,
    0x00800002: Special.NEG_INF,
    0x00800001: Special.RESERVED,
}


def _signed(raw: int, bits: int) -> int:
    return raw - (1 << bits) if raw & (1 << (bits - 1)) else raw


def exact_decimal(mantissa: int, exponent: int) -> float:
    """The float nearest to the decimal ``mantissa x 10**exponent``.

    >>> exact_decimal(1000, -1), exact_decimal(56, -4), exact_decimal(-55, -1)
    (100.0, 0.0056, -5.5)
    """
    return float(f"{mantissa}e{exponent}")


def sfloat_parts(raw: int) -> tuple[int, int]:
    """(mantissa, exponent) of a 16-bit SFLOAT, ignoring special patterns."""
    return _signed(raw & 0x0FFF, 12), _signed((raw >> 12) & 0x0F, 4)


def float_parts(raw: int) -> tuple[int, int]:
    """(mantissa, exponent) of a 32-bit FLOAT, ignoring special patterns."""
    return _signed(raw & 0x00FFFFFF, 24), _signed((raw >> 24) & 0xFF, 8)


def sfloat_from_raw(raw: int) -> float | Special:
    """Decode a 16-bit SFLOAT given as an integer (not octets).

    >>> sfloat_from_raw(0xF3E8), sfloat_from_raw(0x07FF), sfloat_from_raw(0x17FF)
    (100.0, <Special.NAN: 'NaN'>, 20470.0)
    """
    if not 0 <= raw <= 0xFFFF:
        raise ValueError(f"SFLOAT raw value out of 16-bit range: {raw!r}")
    special = SFLOAT_SPECIALS.get(raw)
    if special is not None:
        return special
    return exact_decimal(*sfloat_parts(raw))


def float_from_raw(raw: int) -> float | Special:
    """Decode a 32-bit FLOAT given as an integer (not octets).

    >>> float_from_raw(0xFE000EB0), float_from_raw(0x00800000)
    (37.6, <Special.NRES: 'NRes'>)
    """
    if not 0 <= raw <= 0xFFFFFFFF:
        raise ValueError(f"FLOAT raw value out of 32-bit range: {raw!r}")
    special = FLOAT_SPECIALS.get(raw)
    if special is not None:
        return special
    return exact_decimal(*float_parts(raw))


def decode_sfloat(data: bytes, offset: int = 0) -> float | Special:
    """SFLOAT from two little-endian octets at ``offset`` (IndexError-free: ValueError if short)."""
    chunk = data[offset:offset + SFLOAT_OCTETS]
    if len(chunk) != SFLOAT_OCTETS:
        raise ValueError(f"SFLOAT needs {SFLOAT_OCTETS} octets at offset {offset}, got {len(chunk)}")
    return sfloat_from_raw(int.from_bytes(chunk, "little"))


def decode_float(data: bytes, offset: int = 0) -> float | Special:
    """FLOAT from four little-endian octets at ``offset`` (ValueError if short)."""
    chunk = data[offset:offset + FLOAT_OCTETS]
    if len(chunk) != FLOAT_OCTETS:
        raise ValueError(f"FLOAT needs {FLOAT_OCTETS} octets at offset {offset}, got {len(chunk)}")
    return float_from_raw(int.from_bytes(chunk, "little"))


def is_special(value: object) -> bool:
    return isinstance(value, Special)
