"""Open mHealth file import (``vitalstream import FILE``): one point, an array, JSON
lines; broken items become dead letters with their reason, never exceptions."""

from __future__ import annotations

import json

import pytest
from test_omh import SAMPLES, point
from vitalstream.connectors.omh import ActivityEpisode
from vitalstream.connectors.omh_file import import_file
from vitalstream.errors import DecodeError
from vitalstream.model import DeadLetter, Quality, RawReading
from vitalstream.operators.clock import FakeClock

# --- file import ---------------------------------------------------------------

def _hr_point(value, t="2024-03-01T12:00:00Z"):
    return point("heart-rate", "2.0", {"heart_rate": {"value": value, "unit": "beats/min"},
                                       "effective_time_frame": {"date_time": t}}, user_id="pat-3")


def test_import_file_reads_one_point_an_array_and_json_lines(tmp_path):
    one = tmp_path / "one.json"
    one.write_text(json.dumps(_hr_point(61), indent=2))
    arr = tmp_path / "arr.json"
    activity = json.loads((SAMPLES / "data-point/1.0/shouldPass/valid-data-point.json").read_text())
    watch = _hr_point(62)
    watch["header"]["acquisition_provenance"] = {"source_name": "watch-3"}
    arr.write_text(json.dumps([watch, activity, _hr_point(63, "2024-03-01T12:00:00"), _hr_point(66)]))
    lines = tmp_path / "lines.jsonl"
    lines.write_text("\n".join([json.dumps(_hr_point(64)), '{"header": oops}',
                                "", json.dumps(_hr_point(65))]) + "\n")
    clock = FakeClock(1_000)

    # raw readings, like every connector: the caller normalises (and gives the receive time)
    (r,) = import_file(one, device="dev-3", clock=clock)
    assert (r.value, r.unit, r.patient, r.device, r.quality) == \
        (61.0, "{beats}/min", "pat-3", "dev-3", Quality.HISTORICAL)

    out = list(import_file(arr, clock=clock, quality=Quality.OK))
    assert [type(x) for x in out] == [RawReading, ActivityEpisode, DeadLetter, DeadLetter]
    assert (out[1].recv_ns, out[2].recv_ns) == (1_000, 1_000)
    assert (out[0].quality, out[0].device, out[0].patient) == (Quality.OK, "watch-3", "pat-3")
    dl = out[2]  # zoneless time
    assert (dl.step, dl.reason, dl.topic) == ("omh_decode", "schema_invalid", f"file:{arr}")
    assert dl.detail.startswith("item 2: $.body.effective_time_frame")
    assert json.loads(dl.payload) == _hr_point(63, "2024-03-01T12:00:00")
    assert (out[3].reason, out[3].detail[:8]) == ("no_device", "item 3: ")  # user_id is no device

    out = list(import_file(lines, device="dev-3", clock=clock))
    assert [getattr(x, "value", None) for x in out] == [64.0, None, 65.0]
    assert (out[1].reason, out[1].payload) == ("bad_json", b'{"header": oops}')
    assert out[1].detail.startswith("item 1: ")


def test_import_file_broken_document_is_one_dead_letter_and_missing_file_raises(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(_hr_point(61), indent=2)[:-3])
    (dl,) = import_file(broken, device="d")
    assert isinstance(dl, DeadLetter) and dl.reason == "bad_json"
    with pytest.raises(DecodeError) as info:
        list(import_file(tmp_path / "absent.json"))
    assert info.value.reason == "unreadable_file"


def test_absurdly_nested_file_is_one_dead_letter_not_a_crash(tmp_path):
    """A file of 200 000 nested arrays (json.loads recurses): one dead letter, no RecursionError."""
    from vitalstream.connectors.omh_file import import_file
    from vitalstream.model import DeadLetter

    path = tmp_path / "deep.json"
    path.write_text("[" * 200_000 + "]" * 200_000)
    out = list(import_file(path, device="phone-1"))
    assert len(out) == 1 and isinstance(out[0], DeadLetter) and out[0].reason
