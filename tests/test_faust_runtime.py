"""The faust-streaming runtime gives the reference runner's results.

No Kafka broker exists here: faust's own ``Agent.test_context`` feeds each
agent in memory. The repartition hop between the two agents is the only part
replaced (by a direct put into the second agent's test context).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json

from vitalstream.stream.settings import load
from vitalstream.model import Alert, Message, WindowAggregate
from vitalstream.operators.clock import FakeClock
from vitalstream.simulators.scenario import Scenario
from vitalstream.stream.assembly import patient_flow
from vitalstream.stream.faust_app import FaustRuntime, reading_to_json
from vitalstream.stream.ingest import Ingest
from vitalstream.operators.normalise import Normaliser
from vitalstream.stream.reference import run_reference


class Collect:
    def __init__(self) -> None:
        self.items: list = []

    def write(self, items) -> None:
        self.items.extend(items)


def test_faust_agents_match_reference_runner_on_a_scenario():
    sc = Scenario(patients=6, duration_s=900, seed=4, codec="mixed")
    t0 = 4_000_000_000_000_000_000  # receive times: one instant far after every event
    msgs = [Message(m.topic, m.payload, t0) for m in sc.messages()]
    s = load(env={})
    s = dataclasses.replace(s, pipeline=dataclasses.replace(s.pipeline, max_clock_skew_s=None,
                                                             allowed_lateness_s=30.0,
                                                             rule_delay_s=25.0))
    ref = run_reference(msgs, patient_flow(s), lambda: Ingest(Normaliser(None)),
                        start_wall_ns=t0)

    outcomes, results = Collect(), Collect()
    rt = FaustRuntime(s, broker="kafka://localhost:1", outcome_writer=outcomes,
                      result_writer=results, clock=FakeClock(t0))

    async def main() -> None:
        async with rt.patients_agent.test_context() as patients:
            async def forward(shard, reading):
                # What the Kafka hop carries: the JSON form, keyed by shard.
                await patients.put(json.loads(json.dumps(reading_to_json(reading))),
                                   key=shard.encode())
            rt.forward = forward
            async with rt.ingest_agent.test_context() as ingest:
                for m in msgs:
                    await ingest.put(m.payload, key=m.topic.encode(), timestamp=t0 / 1e9)
        rt.close_all()

    asyncio.run(main())
    aggs = [x for x in results.items if type(x) is WindowAggregate]
    alerts = [x for x in results.items if type(x) is Alert]
    key = lambda a: (a.patient, a.device, a.signal.value, a.start_ns)  # noqa: E731
    assert sorted(aggs, key=key) == sorted(ref.aggregates, key=key)
    assert sorted(alerts, key=lambda a: a.event_id) == sorted(ref.alerts, key=lambda a: a.event_id)
    assert len(ref.alerts) > 0 and len(ref.aggregates) > 100
    stored = [o for o in outcomes.items if type(o).__name__ == "Reading"]
    assert len(stored) == len(ref.readings)
