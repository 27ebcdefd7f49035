"""Source liveness (operators/liveness.py): one gateway_offline alarm naming the patients
behind a silent BLE gateway, through the shard host as runtimes feed it (``Heard`` keyed by
gateway), and one broker_lost pipeline alarm; the assembly's consistency check."""

from __future__ import annotations

import pytest

from vitalstream.errors import ConfigError
from vitalstream.model import Alert, Heard, Reading
from vitalstream.operators.liveness import GatewayWatch, LinkWatch
from vitalstream.operators.patient import PatientFlow
from vitalstream.operators.shard import PatientHost, shard_key, shard_of
from vitalstream.signals import Signal

NS = 1_000_000_000
T0 = 1_790_000_000 * NS


def _alerts(out) -> list[Alert]:
    return [x for x in out if type(x) is Alert]


def test_a_silent_gateway_raises_one_alarm_naming_its_recent_patients_then_resolves():
    lg = GatewayWatch(offline_after_s=300, remember_s=3600).build(key="gw-7")
    lg.heard("old-patient", T0)  # moved to another gateway: last heard here 2 h before
    for t in range(0, 600, 10):
        for p in ("p1", "p2", "p3"):
            lg.heard(p, T0 + 7200 * NS + t * NS)
    last = T0 + 7200 * NS + 590 * NS
    assert lg.due() == last + 300 * NS
    assert lg.fire(last + 299 * NS) == []
    (a,) = lg.fire(last + 300 * NS)
    assert (a.patient, a.rule, a.state, a.covers) == ("gateway:gw-7", "gateway_offline", "firing",
                                                      ("p1", "p2", "p3"))
    assert "p1, p2, p3" in a.explanation and "10 min" not in a.explanation  # 300 s = 5 min
    assert lg.fire(last + 3000 * NS) == [] and lg.due() is None  # once
    (r,) = lg.heard("p2", last + 4000 * NS)
    assert (r.alert_id, r.state) == (a.alert_id, "resolved")


def test_the_host_keys_heard_by_gateway_and_fires_on_its_timer():
    host = PatientHost(PatientFlow(), gateways=GatewayWatch(offline_after_s=60)).build()
    out = []
    for i in range(3):
        t = T0 + i * 10 * NS
        out += host.on_batch([Reading(f"p{i}", f"mac{i}", Signal.HEART_RATE, 70.0, "/min", t, t),
                              Heard("gw-1", f"p{i}", t)])[0]
    assert _alerts(out) == []
    host.saw_time(T0 + 20 * NS)
    assert host.notify_at() <= T0 + 80 * NS
    fired = _alerts(host.on_notify(T0 + 80 * NS)[0])
    assert [(a.rule, a.covers) for a in fired] == [("gateway_offline", ("p0", "p1", "p2"))]
    # the snapshot keeps the gateway: a resumed host resolves it
    again = PatientHost(PatientFlow(), gateways=GatewayWatch(offline_after_s=60)).build(host.snapshot())
    back = _alerts(again.on_batch([Heard("gw-1", "p0", T0 + 200 * NS)])[0])
    assert [(a.alert_id, a.state) for a in back] == [(fired[0].alert_id, "resolved")]
    assert shard_key(Heard("gw-1", "p0", 0), 64) == shard_of("gateway:gw-1", 64)


def test_the_broker_link_alarm_needs_the_grace_and_comes_once():
    lg = LinkWatch(after_s=30).build()
    assert lg.observe(True, T0) == []
    assert lg.observe(False, T0 + NS) == [] and lg.observe(False, T0 + 30 * NS) == []
    (a,) = lg.observe(False, T0 + 31 * NS)  # down since T0 + 1 s
    assert (a.patient, a.rule, a.severity, a.covers, a.episode_start_ns) == (
        "pipeline", "broker_lost", "critical", ("*",), T0 + NS)
    assert lg.observe(False, T0 + 100 * NS) == []
    (r,) = lg.observe(True, T0 + 101 * NS)
    assert (r.alert_id, r.state) == (a.alert_id, "resolved")
    # a blip shorter than the grace raises nothing
    assert lg.observe(False, T0 + 200 * NS) == [] and lg.observe(True, T0 + 220 * NS) == []


def test_a_gateway_t_not_below_the_stale_t_is_a_config_error(tmp_path):
    import dataclasses

    from vitalstream.stream import assembly
    from vitalstream.stream.settings import Settings

    rules = tmp_path / "rules.yaml"
    rules.write_text("stale: {heart_rate: 600}\ngateways: {offline_after_s: 600}\n")
    with pytest.raises(ConfigError) as ei:
        assembly.patient_host(dataclasses.replace(Settings(), rules_path=str(rules)))
    assert "shorter than every stale" in ei.value.detail
    rules.write_text("stale: {heart_rate: 600}\ngateways: {offline_after_s: 300}\n")
    host = assembly.patient_host(dataclasses.replace(Settings(), rules_path=str(rules)))
    assert host.gateways.offline_after_s == 300
    packaged = assembly.patient_host(Settings())
    assert packaged.gateways.offline_after_s == 600 and packaged.flow.stale.after_s["heart_rate"] == 1800
