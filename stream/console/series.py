"""The console's read side of the time-series store: what the pipeline wrote, read back.

The pipeline writes only line protocol (``vitalstream.sinks.lineproto``), so one write path
serves two stores whose read sides share nothing:

- **VictoriaMetrics** (the demo and the tests; line ``m,tags f=v`` is metric ``m_f``):
  ``/api/v1/export`` for ranges, because it gives the stored samples as they are, where
  ``query_range`` would align them to a step and interpolate. The ward's newest values come
  from one MetricsQL instant query (``last_over_time`` and ``tlast_over_time`` joined by a
  ``union`` of ``label_set`` parts), so a 24 h horizon costs one sample per series, not a
  day of them. ``nocache=1``: without it VM hides the last 30 s (``-search.latencyOffset``)
  from instant queries, and the newest reading is the point of the ward; an export without
  ``end`` hides them too. VM keeps milliseconds (times come back as ``ms * 10**6`` ns) and
  12 significant digits.
- **InfluxDB** through InfluxQL (``/query``: 1.x, or 2.x's v1 compatibility with a DBRP
  mapping and ``Authorization: Token``): times are exact nanoseconds.

Patient ids are user data: they only ever enter a query as a quoted literal (InfluxQL
``'...'`` with ``\\``, ``'`` and newline escaped; MetricsQL ``"..."`` JSON-style) or, for the
ward's one VM query, regex-escaped inside such a literal.

Every returned series holds at most ``max_points`` points (default 5000): a longer one keeps
every k-th point, counted back from the newest so that it is always kept. Seven days of 1 Hz
readings (604,800) come back as about 5000; the window ``min``/``max`` series keep the
envelope that thinning can lose. Thinning happens after the read: the store still sends it all.
"""

from __future__ import annotations

import base64
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from decimal import Decimal
from typing import Any, Protocol, Sequence

from vitalstream.errors import VitalstreamError

Point = tuple[int, float]  # (t_ns, value)
Fields = dict[str, dict[str, list[Point]]]  # signal -> field -> points
STEP = "console.series"
MS = 1_000_000
WINDOW_FIELDS = ("mean", "min", "max")
ANOMALY_FIELDS = ("score", "expected_low", "expected_high")
KINDS = ("auto", "victoria-metrics", "influxql")


class SeriesError(VitalstreamError):
    """The store could not be read. Reasons: ``unreachable``, ``http_<status>``,
    ``query_error``, ``bad_answer``, ``unknown_store``, ``bad_kind``."""

    def __init__(self, reason: str, detail: str = "", patient: str | None = None) -> None:
        self.patient = patient
        super().__init__(STEP, None, reason, f"patient {patient!r}: {detail}" if patient else detail)


class SeriesReader(Protocol):
    def latest(self, patients: Sequence[str], since_ns: int, until_ns: int) -> dict[str, dict[str, tuple[int, float]]]:
        """Per patient, per signal: the newest raw reading (t_ns, value) in [since, until]."""
    def latest_news2(self, patients: Sequence[str], since_ns: int, until_ns: int) -> dict[str, tuple[int, int, int]]:
        """Per patient: newest NEWS2 (t_ns, score, band_rank)."""
    def readings(self, patient: str, start_ns: int, end_ns: int) -> dict[str, list[Point]]:
        """Raw readings per signal, time-ordered (all devices of the patient merged)."""
    def windows(self, patient: str, start_ns: int, end_ns: int, measurement: str = "vitals_1m") -> Fields:
        """Per signal: {"mean": [...], "min": [...], "max": [...]} (fields present only)."""
    def anomaly(self, patient: str, start_ns: int, end_ns: int) -> Fields:
        """Per signal: {"score": [...], "expected_low": [...], "expected_high": [...]}"""
    def news2(self, patient: str, start_ns: int, end_ns: int) -> list[tuple[int, int, int]]:
        """(t_ns, score, band_rank) time-ordered."""


def thin(points: list[Any], max_points: int) -> list[Any]:
    """Every k-th point ending on the last, at most ``max_points`` (>= 2) of them.

    >>> thin(list(range(10)), 4)
    [0, 3, 6, 9]
    """
    n = len(points)
    if n <= max_points:
        return points
    k = -(-(n - 1) // (max_points - 1))
    return points[(n - 1) % k::k]


def _news2(fields: dict[str, list[Point]]) -> list[tuple[int, int, int]]:
    band = dict(fields.get("band", ()))  # written on the score's line, so at the same time
    return [(t, int(v), int(band[t])) for t, v in fields.get("score", ()) if t in band]


class _Http:
    def __init__(self, url: str, headers: dict[str, str], timeout_s: float, max_points: int) -> None:
        if max_points < 2:
            raise SeriesError("bad_max_points", f"max_points {max_points} < 2")
        self.url, self.headers = url.rstrip("/"), headers
        self.timeout_s, self.max_points = timeout_s, max_points

    def _post(self, path: str, params: dict[str, str], patient: str | None = None) -> bytes:
        # POST form: a ward's query (every patient id in it) can outgrow a URL.
        req = urllib.request.Request(self.url + path, urllib.parse.urlencode(params).encode(),
                                     {**self.headers, "Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                return resp.read()
        except urllib.error.HTTPError as e:
            raise SeriesError(f"http_{e.code}", f"{path}: {e.read()[:300]!r}", patient) from None
        except (urllib.error.URLError, OSError) as e:  # refused, unknown host, timeout
            raise SeriesError("unreachable", f"{self.url}{path}: {e}", patient) from None

    def _json(self, body: bytes, patient: str | None) -> Any:
        try:
            return json.loads(body)
        except ValueError as e:
            raise SeriesError("bad_answer", f"not JSON: {e}: {body[:200]!r}", patient) from None

    def _finish(self, acc: dict[str, dict[str, list[Point]]]) -> Fields:
        # export sends a series in blocks in no set order, and devices interleave: sort;
        # an exact (t, v) repeat (a re-sent batch before VM merges it) is one point.
        return {o: {f: thin(sorted(set(pts)), self.max_points) for f, pts in d.items()}
                for o, d in acc.items()}

    def _fields(self, measurement: str, fields: Sequence[str], patient: str, start_ns: int,
                end_ns: int) -> Fields:
        raise NotImplementedError  # {signal ("" if none): {field: points}}

    def readings(self, patient: str, start_ns: int, end_ns: int) -> dict[str, list[Point]]:
        return {sig: f["value"] for sig, f in self._fields("vitals", ("value",), patient, start_ns,
                                                           end_ns).items()}

    def windows(self, patient: str, start_ns: int, end_ns: int, measurement: str = "vitals_1m") -> Fields:
        return self._fields(measurement, WINDOW_FIELDS, patient, start_ns, end_ns)

    def anomaly(self, patient: str, start_ns: int, end_ns: int) -> Fields:
        return self._fields("anomaly", ANOMALY_FIELDS, patient, start_ns, end_ns)

    def news2(self, patient: str, start_ns: int, end_ns: int) -> list[tuple[int, int, int]]:
        got = self._fields("news2", ("score", "band"), patient, start_ns, end_ns)
        return thin(_news2(got.get("", {})), self.max_points)


def _mql(s: str) -> str:
    return json.dumps(s, ensure_ascii=False)  # a Go-quoted string: what MetricsQL unquotes


def _re(s: str) -> str:
    return re.sub(r"[!-/:-@\[-`{-~]", r"\\\g<0>", s)  # RE2 takes any escaped ASCII punctuation


def _vm_time(ns: int) -> str:
    ms = max(0, ns // MS)  # the stored ms is floor(t_ns / 10**6): inclusive bounds map exactly
    return f"{ms // 1000}.{ms % 1000:03d}"


class VictoriaMetricsReader(_Http):
    def __init__(self, url: str, *, token: str | None = None, timeout_s: float = 5.0,
                 max_points: int = 5000) -> None:
        # the writer's header: whatever accepted its writes (vmauth, a proxy) sees the same
        super().__init__(url, {"Authorization": f"Token {token}"} if token else {}, timeout_s, max_points)

    def _fields(self, measurement: str, fields: Sequence[str], patient: str, start_ns: int,
                end_ns: int) -> Fields:
        names = _mql(f"{_re(measurement)}_({'|'.join(map(_re, fields))})")
        body = self._post("/api/v1/export", {
            "match[]": f"{{__name__=~{names},patient={_mql(patient)}}}",
            "start": _vm_time(start_ns), "end": _vm_time(end_ns)}, patient)
        acc: dict[str, dict[str, list[Point]]] = defaultdict(lambda: defaultdict(list))
        for line in body.splitlines():
            if line.strip():
                row = self._json(line, patient)
                m = row["metric"]
                acc[m.get("signal", "")][m["__name__"][len(measurement) + 1:]] += [
                    (t * MS, float(v)) for t, v in zip(row["timestamps"], row["values"])]
        return self._finish(acc)

    def _last(self, parts: dict[str, tuple[str, str]], since_ns: int, until_ns: int
              ) -> dict[tuple[tuple[str, str], ...], dict[str, str]]:
        """{labels: {part: value}} of ``fn(selector[since..until])`` per part, at ``until``."""
        window = f"[{max(0, until_ns // MS - since_ns // MS) + 1}ms]"  # (until - w, until]
        q = "union(" + ",".join(f'label_set({fn}({sel}{window}),"vs_part","{name}")'
                                for name, (fn, sel) in parts.items()) + ")"
        answer = self._json(self._post("/api/v1/query", {"query": q, "time": _vm_time(until_ns),
                                                          "nocache": "1"}), None)
        if answer.get("status") != "success":
            raise SeriesError("query_error", f"{q}: {answer.get('error')}")
        out: dict[tuple[tuple[str, str], ...], dict[str, str]] = defaultdict(dict)
        for r in answer["data"]["result"]:
            m = r["metric"]  # tlast_over_time drops __name__, last_over_time keeps it
            labels = tuple(sorted((k, v) for k, v in m.items() if k not in ("__name__", "vs_part")))
            out[labels][m["vs_part"]] = r["value"][1]
        return out

    @staticmethod
    def _ns(seconds: str) -> int:
        return int((Decimal(seconds) * 1000).to_integral_value()) * MS  # "1700000000.123": exact

    @staticmethod
    def _any_of(patients: Sequence[str]) -> str:
        return _mql("^(" + "|".join(map(_re, patients)) + ")$")

    def latest(self, patients: Sequence[str], since_ns: int, until_ns: int) -> dict[str, dict[str, tuple[int, float]]]:
        if not patients or until_ns < since_ns:
            return {}
        sel = f"vitals_value{{patient=~{self._any_of(patients)}}}"
        out: dict[str, dict[str, tuple[int, float]]] = {}
        wanted = set(patients)
        for labels, part in self._last({"v": ("last_over_time", sel), "t": ("tlast_over_time", sel)},
                                       since_ns, until_ns).items():
            m = dict(labels)
            if m.get("patient") in wanted and "v" in part and "t" in part:
                per, sig, t = out.setdefault(m["patient"], {}), m.get("signal", ""), self._ns(part["t"])
                if sig not in per or t > per[sig][0]:  # the newest of the patient's devices
                    per[sig] = (t, float(part["v"]))
        return out

    def latest_news2(self, patients: Sequence[str], since_ns: int, until_ns: int) -> dict[str, tuple[int, int, int]]:
        if not patients or until_ns < since_ns:
            return {}
        p = self._any_of(patients)
        score, band = f"news2_score{{patient=~{p}}}", f"news2_band{{patient=~{p}}}"
        got = self._last({"s": ("last_over_time", score), "t": ("tlast_over_time", score),
                          "b": ("last_over_time", band)}, since_ns, until_ns)
        wanted = set(patients)
        return {m["patient"]: (self._ns(x["t"]), int(float(x["s"])), int(float(x["b"])))
                for m, x in ((dict(k), v) for k, v in got.items())
                if m.get("patient") in wanted and {"s", "t", "b"} <= x.keys()}


def _lit(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


def _ident(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


class InfluxQLReader(_Http):
    def __init__(self, url: str, database: str, token: str | None = None,
                 username: str | None = None, password: str | None = None, *,
                 timeout_s: float = 5.0, max_points: int = 5000) -> None:
        headers = {}
        if token:  # 2.x
            headers["Authorization"] = f"Token {token}"
        elif username is not None:  # 1.x with auth-enabled
            cred = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
            headers["Authorization"] = f"Basic {cred}"
        super().__init__(url, headers, timeout_s, max_points)
        self.database = database

    def _series(self, q: str, patient: str | None = None) -> list[dict[str, Any]]:
        answer = self._json(self._post("/query", {"db": self.database, "epoch": "ns", "q": q},
                                       patient), patient)
        results = answer.get("results") or [{}]
        err = answer.get("error") or results[0].get("error")
        if err:
            raise SeriesError("query_error", f"{q}: {err}", patient)
        return results[0].get("series", [])

    @staticmethod
    def _where(patients: Sequence[str], start_ns: int, end_ns: int) -> str:
        who = " OR ".join(f'"patient" = {_lit(p)}' for p in patients)
        return f"time >= {int(start_ns)} AND time <= {int(end_ns)} AND ({who})"

    def _fields(self, measurement: str, fields: Sequence[str], patient: str, start_ns: int,
                end_ns: int) -> Fields:
        by = "" if measurement == "news2" else ' GROUP BY "signal"'  # news2 has no signal tag
        q = (f"SELECT {','.join(map(_ident, fields))} FROM {_ident(measurement)} "
             f"WHERE {self._where([patient], start_ns, end_ns)}{by}")
        acc: dict[str, dict[str, list[Point]]] = defaultdict(lambda: defaultdict(list))
        for s in self._series(q, patient):
            sig, cols = (s.get("tags") or {}).get("signal", ""), s["columns"]
            for row in s["values"]:
                for f, v in zip(cols[1:], row[1:]):
                    if v is not None:  # a field the row lacks (or no line has) is null
                        acc[sig][f].append((int(row[0]), float(v)))
        return self._finish(acc)

    def latest(self, patients: Sequence[str], since_ns: int, until_ns: int) -> dict[str, dict[str, tuple[int, float]]]:
        if not patients or until_ns < since_ns:
            return {}
        # a single selector returns the selected point's own time
        q = (f'SELECT last("value") FROM "vitals" WHERE {self._where(patients, since_ns, until_ns)} '
             f'GROUP BY "patient","signal"')
        out: dict[str, dict[str, tuple[int, float]]] = {}
        for s in self._series(q):
            t, v = s["values"][0][:2]
            out.setdefault(s["tags"]["patient"], {})[s["tags"]["signal"]] = (int(t), float(v))
        return out

    def latest_news2(self, patients: Sequence[str], since_ns: int, until_ns: int) -> dict[str, tuple[int, int, int]]:
        if not patients or until_ns < since_ns:
            return {}
        # a selector with another field: that field of the selected point
        q = (f'SELECT last("score"),"band" FROM "news2" '
             f'WHERE {self._where(patients, since_ns, until_ns)} GROUP BY "patient"')
        return {s["tags"]["patient"]: (int(t), int(score), int(band))
                for s in self._series(q) for t, score, band in s["values"][:1] if band is not None}


def probe(url: str, timeout_s: float = 5.0) -> str:
    """"influxql" or "victoria-metrics", asking the server: InfluxDB (1.x and 2.x) sends
    ``X-Influxdb-Version`` on ``/ping``; VictoriaMetrics answers ``/ping`` too (204, for
    InfluxDB clients) but without it, and ``/health`` with ``OK`` (1.x InfluxDB has none)."""
    base = url.rstrip("/")
    for path in ("/ping", "/health"):
        try:
            with urllib.request.urlopen(base + path, timeout=timeout_s) as resp:
                if resp.headers.get("X-Influxdb-Version"):
                    return "influxql"
                if path == "/health" and resp.read(16).strip() == b"OK":
                    return "victoria-metrics"
        except urllib.error.HTTPError:
            continue
        except (urllib.error.URLError, OSError) as e:
            raise SeriesError("unreachable", f"{base}{path}: {e}") from None
    raise SeriesError("unknown_store", f"{base} is neither InfluxDB nor VictoriaMetrics")


def reader_for(url: str, *, kind: str = "auto", database: str = "vitals", token: str | None = None,
               username: str | None = None, password: str | None = None, timeout_s: float = 5.0,
               max_points: int = 5000) -> SeriesReader:
    """The reader for the store at ``url`` (``kind``: auto, victoria-metrics, influxql).
    ``auto`` probes the server now, so a store that is down fails here (``unreachable``)."""
    if kind not in KINDS:
        raise SeriesError("bad_kind", f"{kind!r}, expected one of {', '.join(KINDS)}")
    if kind == "auto":
        kind = probe(url, timeout_s)
    if kind == "victoria-metrics":
        return VictoriaMetricsReader(url, token=token, timeout_s=timeout_s, max_points=max_points)
    return InfluxQLReader(url, database, token, username, password, timeout_s=timeout_s,
                          max_points=max_points)
