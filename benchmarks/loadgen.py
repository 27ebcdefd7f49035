"""Load generator for benchmarks/pipeline_bench.py: paced QoS 1 SenML publishers in child processes.

Why not paho here: a paho publisher costs ~0.9 core at 5-8k msg/s (shared
notes/performance.md), which on a 2-core box would make the generator the
bottleneck. Each publisher process speaks MQTT 3.1.1 on a raw socket instead:
PUBLISH packets are pre-framed per message (only the SenML base time ``bt`` is
filled in at send time, so the event time *is* the publish time), sent in
batches with one ``sendall``, and every PUBACK is counted by a reader thread. A
step is reported only once PUBACKs equal PUBLISHes, so nothing is lost silently;
in-flight messages are capped well below the 65,535 packet ids.

Workload: ``devices`` devices (``dev-0000``...) x 6 vitals; each message is a
SenML pack of ``readings_per_message`` readings of one device; ~1 % of readings
cross their alert threshold; 0.5 % of messages are re-sent once (same bytes,
new packet id) right after the original, as a gateway retry does.
"""

from __future__ import annotations

import multiprocessing as mp
import random
import socket
import struct
import threading
import time
from dataclasses import asdict, dataclass

# signal, SenML unit, normal mean, normal sd, normal clip (lo, hi), crossing range, rule op, threshold
VITALS = (
    ("heart_rate", "beat/min", 75.0, 8.0, (45.0, 110.0), (125.0, 160.0), ">", 120.0),
    ("spo2", "%", 97.0, 1.0, (92.0, 100.0), (80.0, 89.0), "<", 90.0),
    ("resp_rate", "1/min", 15.0, 2.0, (9.0, 22.0), (26.0, 35.0), ">=", 25.0),
    ("body_temp", "Cel", 36.8, 0.3, (35.8, 37.6), (38.2, 39.5), ">=", 38.0),
    ("bp_systolic", "mm[Hg]", 120.0, 10.0, (95.0, 165.0), (182.0, 210.0), ">=", 180.0),
    ("bp_diastolic", "mm[Hg]", 78.0, 7.0, (55.0, 105.0), (122.0, 140.0), ">=", 120.0),
)
BT_WIDTH = 17  # "%.6f" of a 2001-2286 epoch second: 10 digits, point, 6 digits


@dataclass(frozen=True)
class Workload:
    devices: int = 1000
    readings_per_message: int = 1
    crossing_rate: float = 0.01
    duplicate_rate: float = 0.005
    qos: int = 1
    seed: int = 7

    def describe(self) -> dict:
        d = asdict(self)
        d.update(signals=[v[0] for v in VITALS], codec="senml",
                 payload="SenML pack, bt = publish wall time (us), one device per message",
                 topic="vitalstream/<device>/senml")
        return d


def rules_yaml() -> str:
    """Benchmark rules: one per vital, ``for_s: 0`` so one crossing reading fires at once.
    Grouping is off: the benchmark (like the naive loop) expects every crossing to page, and
    systolic and diastolic crossings of one cuff would otherwise be one concern."""
    out = ["group_alerts: false", "rules:"]
    for name, _, _, _, _, _, op, thr in VITALS:
        out += [f"  - name: bench_{name}", f"    signal: {name}", f"    op: \"{op}\"",
                f"    threshold: {thr}", "    for_s: 0", "    severity: warning"]
    return "\n".join(out) + "\n"


def crosses(signal_index: int, value: float) -> bool:
    _, _, _, _, _, _, op, thr = VITALS[signal_index]
    return {">": value > thr, "<": value < thr, ">=": value >= thr}[op]


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b, n = n % 128, n // 128
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


class RawPublisher:
    """Minimal MQTT 3.1.1 QoS 1 publisher: CONNECT, pre-framed PUBLISH batches, PUBACK count."""

    def __init__(self, host: str, port: int, client_id: str) -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cid = client_id.encode()
        # protocol "MQTT" level 4, clean session, keepalive 0 (no pings needed)
        var = struct.pack(">H", 4) + b"MQTT" + bytes([4, 0x02]) + struct.pack(">H", 0)
        body = var + struct.pack(">H", len(cid)) + cid
        self.sock.sendall(bytes([0x10]) + _varint(len(body)) + body)
        ack = self._recv_exact(4)
        if ack[0] != 0x20 or ack[3] != 0:
            raise ConnectionError(f"CONNACK refused: {ack!r}")
        self.sock.settimeout(None)
        self.sent = 0
        self.acked = 0
        self._pid = 0
        self._stop = False
        self._reader = threading.Thread(target=self._read_acks, daemon=True)
        self._reader.start()

    def _recv_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("broker closed the connection")
            buf += chunk
        return buf

    def _read_acks(self) -> None:
        rest = b""
        while not self._stop:
            try:
                data = self.sock.recv(1 << 16)
            except OSError:
                return
            if not data:
                return
            rest += data
            # Only PUBACKs (0x40 0x02 id id) come back on a publish-only connection.
            n = len(rest) // 4
            if n and rest[0] != 0x40:
                raise ConnectionError(f"unexpected packet {rest[:4]!r}")
            self.acked += n
            rest = rest[n * 4:]

    def next_pid(self) -> bytes:
        self._pid = self._pid % 65535 + 1
        return struct.pack(">H", self._pid)

    def send(self, frames: list[bytes]) -> None:
        # Packet ids wrap at 65,535: never have that many unacknowledged.
        while self.sent - self.acked > 30_000:
            time.sleep(0.001)
        self.sock.sendall(b"".join(frames))
        self.sent += len(frames)

    def wait_acked(self, timeout_s: float = 60.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while self.acked < self.sent:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self) -> None:
        self._stop = True
        try:
            self.sock.sendall(b"\xe0\x00")  # DISCONNECT
            self.sock.close()
        except OSError:
            pass


@dataclass
class _Planned:
    prefix: list[bytes]  # fixed header + topic
    template: list[bytes]  # payload with one %.6f for bt
    dup: list[bool]  # this message is a re-send of the previous one
    readings: int
    crossings: int
    fires: int


class Plan:
    """Messages of one publisher (devices ``i % count == index``), state kept across steps."""

    def __init__(self, wl: Workload, index: int, count: int) -> None:
        self.wl = wl
        self.devices = [f"dev-{d:04d}" for d in range(wl.devices) if d % count == index]
        self.rng = random.Random(wl.seed * 1000 + index)
        self.cursor = 0  # position in the (signal round, device) cycle
        self.crossing_now: dict[tuple[int, int], bool] = {}  # (device, signal) -> last was crossing

    def _value(self, s: int) -> float:
        _, _, mean, sd, (lo, hi), (clo, chi), _, _ = VITALS[s]
        if self.rng.random() < self.wl.crossing_rate:
            return round(self.rng.uniform(clo, chi), 1)
        return round(min(hi, max(lo, self.rng.gauss(mean, sd))), 1)

    def make(self, n: int) -> _Planned:
        wl, k, nd = self.wl, self.wl.readings_per_message, len(self.devices)
        p = _Planned([], [], [], 0, 0, 0)
        for _ in range(n):
            if p.template and self.rng.random() < wl.duplicate_rate:
                p.prefix.append(p.prefix[-1])
                p.template.append(p.template[-1])
                p.dup.append(True)
                continue
            d = self.cursor % nd
            first_signal = (self.cursor // nd) * k
            self.cursor += 1
            dev = self.devices[d]
            recs = []
            for j in range(k):
                s = (first_signal + j) % len(VITALS)
                v = self._value(s)
                c = crosses(s, v)
                p.crossings += c
                if c and not self.crossing_now.get((d, s), False):
                    p.fires += 1
                self.crossing_now[(d, s)] = c
                name, unit = VITALS[s][0], VITALS[s][1]
                # Later records of a pack are 1 ms apart (t relative to bt), so
                # (device, signal, time) stays unique when a pack repeats a signal.
                t = "" if j == 0 else f',"t":{-j / 1000:.3f}'
                head = f'"bn":"{dev}:","bt":BT,' if j == 0 else ""
                recs.append(f'{{{head}"n":"{name}","u":"{unit}","v":{v}{t}}}')
            payload = ("[" + ",".join(recs) + "]").replace("%", "%%").replace("BT", "%.6f").encode()
            topic = f"vitalstream/{dev}/senml".encode()
            length = 2 + len(topic) + 2 + len(payload % 1_700_000_000.0)  # bt: BT_WIDTH chars
            p.prefix.append(bytes([0x30 | (wl.qos << 1)]) + _varint(length)
                            + struct.pack(">H", len(topic)) + topic)
            p.template.append(payload)
            p.dup.append(False)
            p.readings += k
        return p


def _run_step(pub: RawPublisher, plan: _Planned, rate: float | None, t0_wall: float) -> dict:
    """Send ``plan`` paced at ``rate`` msg/s from wall time ``t0_wall`` (None: as fast as possible)."""
    n = len(plan.template)
    while time.time() < t0_wall:
        time.sleep(min(0.01, max(0.0, t0_wall - time.time())))
    m0 = time.monotonic()
    i, max_lag, last_payload = 0, 0.0, b""
    prefix, template, dup = plan.prefix, plan.template, plan.dup
    while i < n:
        now = time.monotonic() - m0
        due = n if rate is None else min(n, int(now * rate) + 1)
        if due <= i:
            time.sleep(min(0.002, (i - now * rate) / rate))
            continue
        if rate is not None:
            max_lag = max(max_lag, now - i / rate)
        hi = min(due, i + 2000)
        # One clock read per batch; 1 us apart so that no two messages of a batch
        # share a time (a device-signal repeats within a batch when devices are few).
        bt = time.time() - (hi - i) * 1e-6
        frames = []
        for j in range(i, hi):
            if not dup[j]:
                last_payload = template[j] % (bt + (j - i) * 1e-6)
            frames.append(prefix[j] + pub.next_pid() + last_payload)
        pub.send(frames)
        i = hi
    sent_s = time.monotonic() - m0
    ok = pub.wait_acked()
    return {"messages": n, "duplicates": sum(dup), "readings": plan.readings,
            "crossings": plan.crossings, "fires_expected": plan.fires, "all_acked": ok,
            "send_s": sent_s, "max_lag_s": max_lag, "end_wall": time.time()}


def publisher_main(conn, wl: Workload, index: int, count: int, host: str, port: int) -> None:
    """Child process: obeys ("step", rate, duration_s, t0_wall) / ("burst", n) / ("stop",)."""
    plan = Plan(wl, index, count)
    pub = RawPublisher(host, port, f"bench-pub-{index}-{time.monotonic_ns()}")
    while True:
        cmd = conn.recv()
        if cmd[0] == "stop":
            break
        if cmd[0] == "step":
            _, rate, duration_s, t0 = cmd
            p = plan.make(round(rate * duration_s))
            conn.send(_run_step(pub, p, rate, t0))
        elif cmd[0] == "burst":
            p = plan.make(cmd[1])
            conn.send(_run_step(pub, p, None, time.time()))
    pub.close()
    conn.close()


class Publishers:
    """``count`` publisher processes sharing the devices; steps are split evenly between them."""

    def __init__(self, wl: Workload, host: str, port: int, count: int = 2) -> None:
        ctx = mp.get_context("spawn")
        self.conns, self.procs = [], []
        for i in range(count):
            parent, child = ctx.Pipe()
            p = ctx.Process(target=publisher_main, args=(child, wl, i, count, host, port),
                            daemon=True, name=f"bench-publisher-{i}")
            p.start()
            self.conns.append(parent)
            self.procs.append(p)

    def _gather(self) -> dict:
        reps = [c.recv() for c in self.conns]
        out = {k: sum(r[k] for r in reps) for k in ("messages", "duplicates", "readings",
                                                     "crossings", "fires_expected")}
        out.update(all_acked=all(r["all_acked"] for r in reps),
                   send_s=max(r["send_s"] for r in reps),
                   max_lag_s=max(r["max_lag_s"] for r in reps),
                   end_wall=max(r["end_wall"] for r in reps))
        return out

    def step(self, rate: float, duration_s: float, t0_wall: float) -> dict:
        share = rate / len(self.conns)
        for c in self.conns:
            c.send(("step", share, duration_s, t0_wall))
        return self._gather()

    def burst(self, n: int) -> dict:
        for c in self.conns:
            c.send(("burst", n // len(self.conns)))
        return self._gather()

    def cpu_s(self) -> float:
        from pipeline_procfs import cpu_seconds
        return sum(cpu_seconds(p.pid) for p in self.procs)

    def close(self) -> None:
        for c in self.conns:
            try:
                c.send(("stop",))
            except OSError:
                pass
        for p in self.procs:
            p.join(5)
            if p.is_alive():
                p.terminate()
