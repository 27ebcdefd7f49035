"""Coverage-guided fuzzing (atheris / libFuzzer) of the decoders and the ingest path.

The entry point is the one of ``tests/test_fuzz_decoders.py``: the first byte picks the
codec (``json``, ``senml``, ``ble``, ``omh``), the rest is the payload. Each input is
decoded by the codec directly (only a ``VitalstreamError`` may escape) and then goes
through ``Ingest.process`` with the real decoders (nothing may escape; every dead letter
has a reason; no ``decoder_crash``, the catch-all that hides a decoder bug). A broken
property is counted as a crash, its input kept under ``--findings``, and fuzzing goes
on; at the end one JSON line is printed::

    {"inputs": N, "seconds": S, "crashes": C, "kinds": {...}, "max_len": L, ...}

Run (``pip install atheris`` first; one process, it is CPU-bound)::

    python3 benchmarks/fuzz_decoders.py --seconds 90

Seeds are one valid payload per codec plus the hostile shapes of the limits (deep
nesting, NaN, long numbers), so mutation starts from payloads that reach the decoders'
inner code.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["vitalstream"]):
    from vitalstream.connectors.codecs import default_codecs
    from vitalstream.errors import VitalstreamError
    from vitalstream.model import DeadLetter, Message
    from vitalstream.stream.assembly import ingest
    from vitalstream.stream.settings import Settings

NS = 1_000_000_000
T0 = 1795600800 * NS
CODECS = default_codecs()
NAMES = sorted(CODECS)  # ble, json, omh, senml
TOPIC_DEVICE = {"ble": "gw-1", "json": "dev-1", "omh": "dev-1", "senml": "dev-1"}

SEEDS = {
    "json": b'{"patient": "p-1", "readings": [{"signal": "heart_rate", "value": 72, '
            b'"t": "2026-11-25T10:00:00Z", "flags": ["motion"]}, {"signal": "spo2", '
            b'"value": 97, "t_ns": 1795600800000000000, "unit": "%"}]}',
    "senml": b'[{"bn": "dev-1:", "bt": 1795600800, "bu": "/min", "n": "heart_rate", "v": 72},'
             b' {"n": "spo2", "u": "%", "v": 97, "t": 1}, {"n": "heart_rate", "s": 3}]',
    "ble": b'{"device": "aa-bb-cc-dd-ee-01", "uuid": "2A35", "hex": '
           b'"1E 78 00 50 00 5D 00 EA 07 0B 19 0A 00 00 48 00", "t_ns": 1795600800000000000,'
           b' "tz": "Europe/Berlin", "rssi": -60}',
    "omh": b'{"header": {"id": "p-1", "creation_date_time": "2026-11-25T10:00:00Z", '
           b'"schema_id": {"namespace": "omh", "name": "blood-pressure", "version": "1.0"}}, '
           b'"body": {"systolic_blood_pressure": {"value": 120, "unit": "mmHg"}, '
           b'"diastolic_blood_pressure": {"value": 80, "unit": "mmHg"}, '
           b'"effective_time_frame": {"date_time": "2026-11-25T10:00:00Z"}}}',
}
HOSTILE = [b"[" * 4000, b'{"a":' * 1000, b'{"readings": [{"value": NaN}]}', b"[1e999]",
           b"[" + b"9" * 30 + b"]", b'[{"bn": "a:", "v": 1, "bver": 11}]']


class Campaign:
    def __init__(self, findings: Path) -> None:
        self.findings = findings
        self.inputs = 0
        self.crashes = 0
        self.kinds: dict[str, int] = {}
        self.ingest = ingest(Settings())

    def _crash(self, kind: str, data: bytes) -> None:
        self.crashes += 1
        first = kind not in self.kinds
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        if first:  # one input per kind of crash is enough to write a regression test
            self.findings.mkdir(parents=True, exist_ok=True)
            name = hashlib.sha1(data).hexdigest()[:12]
            (self.findings / f"crash-{name}.bin").write_bytes(data)
            (self.findings / f"crash-{name}.txt").write_text(kind + "\n")

    def one(self, data: bytes) -> None:
        self.inputs += 1
        if not data:
            return
        codec = NAMES[data[0] % len(NAMES)]
        payload = data[1:]
        device = TOPIC_DEVICE[codec]
        try:
            out = CODECS[codec](payload, device, T0)
            bad = [o for o in out if not isinstance(o, VitalstreamError) and
                   type(o).__name__ != "RawReading"]
            if bad:
                self._crash(f"{codec}: returned {type(bad[0]).__name__}", data)
        except VitalstreamError:
            pass
        except Exception as exc:  # the property broken: a non-project error escaped
            self._crash(f"{codec}: {type(exc).__name__}: {str(exc)[:80]}", data)
        try:
            outs: list = []
            self.ingest.process(Message(f"vitalstream/{device}/{codec}", payload, T0 + NS), outs)
            for o in outs:
                if isinstance(o, DeadLetter) and (not o.reason or o.reason == "decoder_crash"):
                    self._crash(f"ingest {codec}: dead letter {o.reason!r}: {o.detail[:80]}",
                                data)
        except Exception as exc:
            self._crash(f"ingest {codec}: {type(exc).__name__}: {str(exc)[:80]}", data)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--max-len", type=int, default=8192,
                    help="longest input libFuzzer builds (the size limit has its own tests)")
    ap.add_argument("--findings", type=Path, default=Path("fuzz-findings"))
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    corpus = Path(tempfile.mkdtemp(prefix="vs-fuzz-corpus-"))
    for i, name in enumerate(NAMES):
        (corpus / f"seed-{name}").write_bytes(bytes([i]) + SEEDS[name])
        for j, h in enumerate(HOSTILE):
            (corpus / f"hostile-{name}-{j}").write_bytes(bytes([i]) + h)

    camp = Campaign(args.findings)
    start = time.monotonic()

    def report_and_exit() -> None:
        print(json.dumps({"inputs": camp.inputs, "seconds": round(time.monotonic() - start, 1),
                          "crashes": camp.crashes, "kinds": camp.kinds, "max_len": args.max_len,
                          "seed": args.seed, "codecs": NAMES,
                          "atheris": version("atheris"),
                          "python": sys.version.split()[0]}), flush=True)
        os._exit(0)  # libFuzzer never returns from Fuzz(); leave with the line printed

    def test_one(data: bytes) -> None:
        camp.one(data)
        if time.monotonic() - start >= args.seconds:
            report_and_exit()

    atheris.Setup([sys.argv[0], f"-max_len={args.max_len}", f"-seed={args.seed}",
                   f"-max_total_time={int(args.seconds) + 60}", "-print_final_stats=0",
                   str(corpus)], test_one)
    atheris.Fuzz()
    report_and_exit()


if __name__ == "__main__":
    main()
