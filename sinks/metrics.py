"""Process metrics in the Prometheus text format, served over HTTP for Grafana/Prometheus.

A dependency-free registry: counters and gauges keyed by name and labels. The
pipeline updates plain attributes on its hot path; ``collect`` callbacks read
them when scraped, so metrics cost nothing per reading.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

Sample = tuple[str, dict[str, str], float]


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._collectors: list[Callable[[], list[Sample]]] = []
        self._help: dict[str, tuple[str, str]] = {}
        self._server: ThreadingHTTPServer | None = None

    def describe(self, name: str, kind: str, help_text: str) -> None:
        self._help[name] = (kind, help_text)

    def register(self, collect: Callable[[], list[Sample]]) -> None:
        with self._lock:
            self._collectors.append(collect)

    def samples(self) -> list[Sample]:
        with self._lock:
            collectors = list(self._collectors)
        out: list[Sample] = []
        for c in collectors:
            out.extend(c())
        return out

    def render(self) -> str:
        by_name: dict[str, list[Sample]] = {}
        for s in self.samples():
            by_name.setdefault(s[0], []).append(s)
        lines = []
        for name in sorted(by_name):
            kind, text = self._help.get(name, ("gauge", name))
            lines += [f"# HELP {name} {text}", f"# TYPE {name} {kind}"]
            for _, labels, value in by_name[name]:
                lab = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
                lines.append(f"{name}{{{lab}}} {value}" if lab else f"{name} {value}")
        return "\n".join(lines) + "\n"

    def serve(self, port: int, host: str = "0.0.0.0") -> int:
        metrics = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                body = metrics.render().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer((host, port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True,
                         name="vitalstream-metrics").start()
        return self._server.server_address[1]

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
