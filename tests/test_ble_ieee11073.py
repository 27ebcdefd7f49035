"""IEEE 11073-20601 SFLOAT/FLOAT primitives against shared/reference/ble/vectors.json
and against an independent bit-level decoding with ``decimal``."""

from __future__ import annotations

import json
import math
from decimal import Decimal

import pytest

from vitalstream.testing import shared_dir
from hypothesis import given
from hypothesis import strategies as st

from vitalstream.connectors.ble.ieee11073 import (
    Special,
    decode_float,
    decode_sfloat,
    float_from_raw,
    float_parts,
    sfloat_from_raw,
    sfloat_parts,
)




VECTORS = json.loads((shared_dir() / "reference" / "ble" / "vectors.json").read_text())
REL_TOL = VECTORS["float_rel_tol"]


def _check(got, expected) -> None:
    if isinstance(expected, str):
        assert isinstance(got, Special) and got == expected
    else:
        assert not isinstance(got, Special)
        assert math.isclose(got, expected, rel_tol=REL_TOL, abs_tol=0.0) or got == expected == 0.0


@pytest.mark.parametrize("entry", VECTORS["sfloat"], ids=lambda e: e["raw"])
def test_sfloat_from_shared_ble_vectors_json(entry):
    octets = bytes.fromhex(entry["hex"])
    _check(decode_sfloat(octets), entry["value"])
    _check(sfloat_from_raw(int(entry["raw"], 16)), entry["value"])
    if "mantissa" in entry:
        assert sfloat_parts(int(entry["raw"], 16)) == (entry["mantissa"], entry["exponent"])


@pytest.mark.parametrize("entry", VECTORS["float"], ids=lambda e: e["raw"])
def test_float_from_shared_ble_vectors_json(entry):
    octets = bytes.fromhex(entry["hex"])
    _check(decode_float(octets), entry["value"])
    _check(float_from_raw(int(entry["raw"], 16)), entry["value"])
    if "mantissa" in entry:
        assert float_parts(int(entry["raw"], 16)) == (entry["mantissa"], entry["exponent"])


def _reference(raw: int, exp_bits: int, mant_bits: int) -> float:
    """Independent decode: two's complement by hand, value via exact Decimal."""
    exponent = raw >> mant_bits
    if exponent >= 1 << (exp_bits - 1):
        exponent -= 1 << exp_bits
    mantissa = raw & ((1 << mant_bits) - 1)
    if mantissa >= 1 << (mant_bits - 1):
        mantissa -= 1 << mant_bits
    return float(Decimal(mantissa).scaleb(exponent))


SFLOAT_SPECIAL_RAWS = {0x07FF: "NaN", 0x0800: "NRes", 0x07FE: "+INF", 0x0802: "-INF", 0x0801: "reserved"}
FLOAT_SPECIAL_RAWS = {0x007FFFFF: "NaN", 0x00800000: "NRes", 0x007FFFFE: "+INF",
                      0x00800002: "-INF", 0x00800001: "reserved"}


def test_every_sfloat_pattern_is_the_exact_decimal_or_one_of_five_specials():
    # Exhaustive over all 65 536 patterns: equality, not closeness, because the
    # decoder promises the float nearest to the decimal the device meant.
    for raw in range(0x10000):
        got = sfloat_from_raw(raw)
        if raw in SFLOAT_SPECIAL_RAWS:
            assert got == SFLOAT_SPECIAL_RAWS[raw] and isinstance(got, Special)
        else:
            assert not isinstance(got, Special), hex(raw)
            assert got == _reference(raw, 4, 12), hex(raw)


@given(st.integers(min_value=0, max_value=0xFFFFFFFF))
def test_float_pattern_is_the_exact_decimal_unless_special(raw):
    got = float_from_raw(raw)
    if raw in FLOAT_SPECIAL_RAWS:
        assert got == FLOAT_SPECIAL_RAWS[raw]
    else:
        assert got == _reference(raw, 8, 24)
        assert decode_float(raw.to_bytes(4, "little")) == got


def test_decimal_values_have_no_binary_creep():
    # 12 x 10^-1 computed as 12 * 10.0**-1 is 1.2000000000000002 in binary.
    assert 12 * 10.0 ** -1 != 1.2
    assert decode_sfloat(bytes.fromhex("0CF0")) == 1.2
    # 0x05A550 = 370000, exponent 0xFC = -4 -> 37.0 exactly
    assert decode_float(bytes.fromhex("50A505FC")) == 37.0


def test_nan_lookalike_with_nonzero_exponent_is_a_number():
    # 0x17FF: exponent 1, mantissa 0x7FF = 2047 -> 20470, not NaN
    assert sfloat_from_raw(0x17FF) == 20470.0
    # FLOAT 0x017FFFFF: exponent 1, mantissa 8388607
    assert float_from_raw(0x017FFFFF) == 83886070.0


def test_special_serialises_as_its_name():
    assert json.dumps({"map": Special.NAN}) == '{"map": "NaN"}'
    assert str(Special.POS_INF) == "+INF"


@pytest.mark.parametrize("octets", [b"", b"\x01"])
def test_short_sfloat_is_a_value_error(octets):
    with pytest.raises(ValueError):
        decode_sfloat(octets)


def test_short_float_is_a_value_error():
    with pytest.raises(ValueError):
        decode_float(b"\x00\x00\x00")


def test_offset_reads_the_right_octets():
    assert decode_sfloat(b"\x00\x72\x00", 1) == 114.0
    assert decode_float(b"\xff\xb0\x0e\x00\xfe", 1) == 37.6
