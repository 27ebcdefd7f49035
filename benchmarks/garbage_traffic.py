"""Stage A under garbage: valid readings/s on clean traffic vs the same traffic plus 10 %
garbage messages (issue 14).

Workload: ``--devices`` devices (default 1000), one message a second each in receive
time, alternating native JSON and SenML, one heart-rate reading per message; ``--messages``
valid messages a run. The garbage run interleaves, after every 9 valid messages, one
garbage message (so 10 % of all messages), in turn: malformed JSON (cut short), an unknown
unit, a bad device id in the topic (whitespace), and an oversized payload (80 KiB, above
the decoders' 64 KiB limit). Everything goes through ``Ingest.process_batch`` in batches
of 100 with the real decoders (``default_codecs()``) and the default settings (time
limits, per-device rate limit 50/s, dedup), the patient taken from the payload (no Redis).

Figure: valid readings out of stage A per second (wall time), median of ``--rounds``
alternating clean/garbage runs (each on a fresh ``Ingest``); ``ratio`` =
garbage / clean (target >= 0.8). One JSON line on stdout; progress on stderr.

    python3 benchmarks/garbage_traffic.py            # about 30 s
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import Counter

from vitalstream.model import Message, Reading
from vitalstream.operators.normalise import patient_from_payload
from vitalstream.stream import assembly
from vitalstream.stream.settings import load

NS = 1_000_000_000
T0 = 1_790_000_000 * NS
BATCH = 100


def _valid(i: int, devices: int) -> Message:
    dev = f"dev-{i % devices}"
    recv = T0 + i * NS // devices  # each device once a second
    event = recv - 250_000_000  # measured 250 ms before receipt
    hr = 60.0 + (i * 7) % 40
    if i % 2:
        body = [{"bn": f"{dev}:", "bt": event / NS, "n": "heart_rate", "u": "beat/min", "v": hr}]
        return Message(f"vitalstream/{dev}/senml", json.dumps(body).encode(), recv)
    body = {"v": 1, "device": dev, "patient": f"p-{i % devices}",
            "readings": [{"signal": "heart_rate", "value": hr, "unit": "/min", "t_ns": event}]}
    return Message(f"vitalstream/{dev}/json", json.dumps(body).encode(), recv)


def _garbage(k: int, recv: int, devices: int) -> tuple[str, Message]:
    dev = f"dev-{k % devices}"
    kind = ("malformed_json", "wrong_unit", "bad_id", "oversized")[k % 4]
    ok = {"v": 1, "device": dev, "readings": [{"signal": "heart_rate", "value": 70.0,
                                               "unit": "/min", "t_ns": recv - NS}]}
    if kind == "malformed_json":
        text = json.dumps(ok)
        return kind, Message(f"vitalstream/{dev}/json", text[: len(text) // 2].encode(), recv)
    if kind == "wrong_unit":
        ok["readings"][0]["unit"] = "furlong/fortnight"
        return kind, Message(f"vitalstream/{dev}/json", json.dumps(ok).encode(), recv)
    if kind == "bad_id":
        return kind, Message(f"vitalstream/dev {k}/json", json.dumps(ok).encode(), recv)
    ok["pad"] = "x" * (80 * 1024)
    return kind, Message(f"vitalstream/{dev}/json", json.dumps(ok).encode(), recv)


def traffic(n: int, devices: int, garbage: bool) -> tuple[list[Message], Counter]:
    msgs, kinds = [], Counter()
    for i in range(n):
        msgs.append(_valid(i, devices))
        if garbage and i % 9 == 8:
            kind, m = _garbage(i // 9, msgs[-1].recv_ns, devices)
            kinds[kind] += 1
            msgs.append(m)
    return msgs, kinds


def run_once(msgs: list[Message]) -> tuple[float, int, Counter]:
    ing = assembly.ingest(load(env={}), patient_of=patient_from_payload)
    readings = 0
    t = time.perf_counter()
    for i in range(0, len(msgs), BATCH):
        for o in ing.process_batch(msgs[i:i + BATCH]):
            if type(o) is Reading:
                readings += 1
    return time.perf_counter() - t, readings, Counter(ing.stats.by_reason)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=150_000, help="valid messages a run")
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args(argv)
    clean, _ = traffic(a.messages, a.devices, False)
    dirty, kinds = traffic(a.messages, a.devices, True)
    rates: dict[str, list[float]] = {"clean": [], "garbage": []}
    stored: dict[str, int] = {}
    reasons: Counter = Counter()
    run_once(clean[:5000])  # warm-up: imports, caches
    for r in range(a.rounds):
        for name, msgs in (("clean", clean), ("garbage", dirty)):
            secs, readings, by_reason = run_once(msgs)
            rates[name].append(readings / secs)
            stored[name] = readings
            if name == "garbage":
                reasons = by_reason
            print(f"round {r + 1} {name}: {readings} readings in {secs:.2f} s "
                  f"({readings / secs:,.0f}/s)", file=sys.stderr)
    clean_rate = statistics.median(rates["clean"])
    dirty_rate = statistics.median(rates["garbage"])
    ratio = dirty_rate / clean_rate
    print(json.dumps({
        "benchmark": "garbage_traffic",
        "workload": {"valid_messages": a.messages, "garbage_messages": sum(kinds.values()),
                     "garbage_share": round(sum(kinds.values()) / len(dirty), 4),
                     "garbage_kinds": dict(kinds), "devices": a.devices,
                     "readings_per_message": 1, "codecs": ["json", "senml"], "batch": BATCH,
                     "rounds": a.rounds},
        "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]},
        "clean_readings_per_s": round(clean_rate),
        "garbage_readings_per_s": round(dirty_rate),
        "clean_runs": [round(x) for x in rates["clean"]],
        "garbage_runs": [round(x) for x in rates["garbage"]],
        "valid_readings_stored": stored,
        "garbage_dead_letters_by_reason": dict(sorted(reasons.items())),
        "ratio": round(ratio, 3), "target_ratio": 0.8, "met": ratio >= 0.8,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
