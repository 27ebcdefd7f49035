"""Nudge policy config: the packaged default loads, and bad files fail naming strategy and key."""

from __future__ import annotations

import copy
from datetime import time

import pytest
import yaml

from vitalstream.errors import ConfigError
from vitalstream.operators.nudge import NudgePolicy

GOOD = {
    "timezone": "Europe/London",
    "quiet_hours": {"start": "21:00", "end": "08:00"},
    "caps": [{"channel": "sms", "per": "day", "max": 1}],
    "digest_s": 900,
    "strategies": [
        {"name": "bp-missing",
         "when": {"no_reading": {"signal": "bp_systolic", "for_s": 259200},
                  "programme": "hypertension"},
         "send": {"kind": "patient-reminder", "channel": "sms", "message": "m"},
         "repeat_s": 259200,
         "experiment": {"name": "e", "seed": "s", "variants": {"holdout": 0.2, "sms": 0.8}}},
        {"name": "visit-follow-up", "when": {"after_event": "visit", "delay_s": 604800},
         "send": {"kind": "patient-reminder", "channel": "sms"},
         "done_if": {"reading": "bp_systolic", "since": "trigger"}},
    ],
}


def test_packaged_default_is_the_documented_policy() -> None:
    p = NudgePolicy.default()
    assert [s.name for s in p.strategies] == ["bp-missing", "glucose-after-meal",
                                              "hypertension-welcome", "chronic-recall",
                                              "visit-follow-up"]
    assert (p.quiet_hours.start, p.quiet_hours.end) == (time(21), time(8))
    assert [(c.channel, c.per, c.max) for c in p.caps] == [("sms", "day", 1), ("sms", "week", 3),
                                                          ("*", "day", 2)]
    bp = p.strategies[0]
    assert bp.experiment.holdout == "holdout" and bp.send_for("app").channel == "app"
    assert bp.send_for("sms").channel == "sms"


def test_from_yaml_reads_a_path_and_text_alike(tmp_path) -> None:
    f = tmp_path / "n.yaml"
    f.write_text(yaml.safe_dump(GOOD))
    assert NudgePolicy.from_yaml(f) == NudgePolicy.from_yaml(str(f)) == \
        NudgePolicy.from_yaml(yaml.safe_dump(GOOD)) == NudgePolicy.from_dict(GOOD)


def _with(path: tuple, value, delete: bool = False) -> dict:
    doc = copy.deepcopy(GOOD)
    node = doc
    for k in path[:-1]:
        node = node[k]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return doc


S0, S1 = ("strategies", 0), ("strategies", 1)


@pytest.mark.parametrize("path,value,words", [
    (("colour",), "red", ["policy", "unknown key 'colour'"]),
    (S0 + ("when", "no_reading", "sigal"), "x", ["'bp-missing'", "when.no_reading", "'sigal'"]),
    (S0 + ("when", "no_reading", "signal"), "bp", ["'bp-missing'", "when.no_reading.signal", "'bp'"]),
    (S0 + ("when", "no_reading", "for_s"), -5, ["'bp-missing'", "for_s"]),
    (S0 + ("when", "no_reading", "for_s"), "3d", ["'bp-missing'", "for_s"]),
    (S0 + ("send", "kind"), "sms", ["'bp-missing'", "send.kind"]),
    (S0 + ("send", "chanel"), "sms", ["'bp-missing'", "send", "'chanel'"]),
    (S0 + ("repeat_s",), True, ["'bp-missing'", "repeat_s"]),
    (S0 + ("experiment", "variants"), {"a": 0.5, "b": 0.2}, ["'bp-missing'", "experiment.variants"]),
    (S0 + ("experiment", "holdout"), "none", ["'bp-missing'", "experiment.holdout"]),
    (S0 + ("experiment", "overrides"), {"email": {"channel": "e"}}, ["'bp-missing'", "overrides"]),
    (S0 + ("when", "tag_set"), "x", ["'bp-missing'", "exactly one of"]),
    (S1 + ("when", "after_event"), "lunch", ["'visit-follow-up'", "when.after_event", "'lunch'"]),
    (S1 + ("done_if", "since"), "yesterday", ["'visit-follow-up'", "done_if.since"]),
    (S1 + ("done_if", "reading"), "bp_sys", ["'visit-follow-up'", "done_if.reading"]),
    (S1 + ("priority",), 1, ["'visit-follow-up'", "'priority'"]),
    (S1 + ("name",), "bp-missing", ["'bp-missing'", "twice"]),
    (("timezone",), "Europe/Londres", ["timezone", "'Europe/Londres'"]),
    (("timezone",), "../etc/passwd", ["timezone"]),
    (("quiet_hours", "start"), "25:00", ["quiet_hours.start", "'25:00'"]),
    (("quiet_hours", "end"), 1260, ["quiet_hours.end", "quoted"]),  # unquoted 21:00 in YAML 1.1
    (("quiet_hours", "end"), "21:00", ["quiet_hours", "equal"]),
    (("caps", 0, "per"), "month", ["caps[0].per", "'month'"]),
    (("caps", 0, "max"), 1.5, ["caps[0].max"]),
    (("digest_s",), "15 min", ["digest_s"]),
])
def test_bad_config_names_the_strategy_and_key(path, value, words) -> None:
    with pytest.raises(ConfigError) as err:
        NudgePolicy.from_dict(_with(path, value))
    for w in words:
        assert w in str(err.value), (w, str(err.value))


def test_missing_parts_and_bad_yaml_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="'visit-follow-up'.*missing key 'send'"):
        NudgePolicy.from_dict(_with(S1 + ("send",), None, delete=True))
    with pytest.raises(ConfigError, match="after_event needs exactly one"):
        NudgePolicy.from_dict(_with(S1 + ("when", "delay_s"), None, delete=True))
    with pytest.raises(ConfigError, match="bad_yaml"):
        NudgePolicy.from_yaml("strategies: [unclosed\n")
    with pytest.raises(ConfigError, match="each strategy needs a 'name'"):
        NudgePolicy.from_dict({"strategies": [{"when": {"tag_set": "a"}}]})
