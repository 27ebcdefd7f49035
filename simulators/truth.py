"""Read a ground-truth file back, and compare what a pipeline produced with it.

``vitalstream simulate --ground-truth FILE`` writes one JSON object per line
(``Scenario.ground_truth``). A run checked after the fact (tests of the CLI, the
demo summary, a person with ``redis-cli``) needs the same three answers:

- which readings must be stored: ``scenario_of(truth).valid_readings()`` rebuilds
  the scenario from the file's header (deterministic given the seed) and checks
  that it says what the file says;
- how many re-sent readings dedup must drop: ``counts["duplicate_readings"]``;
- whether the alerts match the injected episodes: ``check_alerts``.
"""

from __future__ import annotations

import collections
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vitalstream.simulators.devices import FaultRates
from vitalstream.simulators.physiology import SamplingRates
from vitalstream.simulators.scenario import ExpectedReading, Scenario

MS = 1_000_000


def read_ground_truth(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def of_type(truth: Iterable[dict], kind: str) -> list[dict]:
    return [g for g in truth if g["type"] == kind]


def scenario_of(truth: Sequence[dict]) -> Scenario:
    """The scenario a ground-truth file was written from (its messages, its valid readings)."""
    head = truth[0]
    if head.get("type") != "scenario":
        raise ValueError("ground truth must start with its scenario header")
    sc = Scenario(patients=head["patients"], duration_s=head["duration_s"], seed=head["seed"],
                  codec=head["codec"], start_ns=head["start_ns"], time_scale=head["time_scale"],
                  readings_per_message=head["readings_per_message"],
                  rates=SamplingRates(**head["rates"]), faults=FaultRates(**head["faults"]),
                  profiles=[p["profile"] for p in of_type(truth, "patient")],
                  topic_prefix=head.get("topic_prefix", "vitalstream"))
    rebuilt = json.loads(json.dumps(sc.ground_truth()))  # tuples -> lists, as in the file
    if rebuilt != list(truth):
        raise ValueError("the rebuilt scenario does not match the ground truth "
                         "(written by another simulator version?)")
    return sc


def expected_series(readings: Iterable[ExpectedReading],
                    unit_ns: int = MS) -> dict[tuple[str, str, str], list[tuple[int, float]]]:
    """(patient, device, signal) -> sorted (time in ``unit_ns``, canonical value): what a store holds."""
    out: dict[tuple[str, str, str], list[tuple[int, float]]] = collections.defaultdict(list)
    for r in readings:
        out[(r.patient, r.device, r.signal)].append((r.event_ns // unit_ns, r.value))
    return {k: sorted(v) for k, v in out.items()}


def _field(alert: Any, name: str) -> Any:
    """An alert as a ``model.Alert`` or as the fields of its Redis stream entry."""
    if isinstance(alert, Mapping):
        v = alert[name]
        return v.decode() if isinstance(v, bytes) else v
    v = getattr(alert, name)
    return getattr(v, "value", v)  # enum states


@dataclass
class AlertCheck:
    """How alert events compare with the injected episodes.

    An episode is caught by a ``firing`` event of its rule for its patient between
    its onset and its recovery; exactly one such event is expected. Other rules of the
    episode may open as ``grouped``/``escalated`` under it (one concern, one page); every
    event's alert id must have opened in one of these three states.
    """

    episodes: int = 0
    missed: list[dict] = field(default_factory=list)  # episodes without a firing event
    doubled: list[tuple[dict, list]] = field(default_factory=list)  # episodes fired more than once
    stray: list = field(default_factory=list)  # firing events for no episode of that patient/rule
    orphans: list = field(default_factory=list)  # events of an alert id that never fired

    @property
    def caught(self) -> int:
        return self.episodes - len(self.missed)

    @property
    def ok(self) -> bool:
        return not (self.missed or self.doubled or self.stray or self.orphans)


_OPENING = ("firing", "grouped", "escalated")


def check_alerts(truth: Iterable[dict], alerts: Iterable[Any]) -> AlertCheck:
    """Compare alert events (``Alert`` objects or Redis entry fields) with the ground truth."""
    truth = list(truth)
    alerts = list(alerts)
    episodes = of_type(truth, "episode")
    firing = [a for a in alerts if _field(a, "state") == "firing"]
    check = AlertCheck(episodes=len(episodes))
    for ep in episodes:
        mine = [a for a in firing if _field(a, "patient") == ep["patient"]
                and _field(a, "rule") == ep["rule"]
                and ep["onset_ns"] <= int(_field(a, "event_ns")) <= ep["recovered_ns"]]
        if not mine:
            check.missed.append(ep)
        elif len(mine) > 1:
            check.doubled.append((ep, mine))
    allowed = collections.defaultdict(set)
    for ep in episodes:
        allowed[ep["patient"]].update(ep["rules"])
    opened = [a for a in alerts if _field(a, "state") in _OPENING]
    check.stray = [a for a in opened if _field(a, "rule") not in allowed.get(_field(a, "patient"), ())]
    fired = {_field(a, "alert_id") for a in opened}
    check.orphans = [a for a in alerts if _field(a, "alert_id") not in fired]
    return check
