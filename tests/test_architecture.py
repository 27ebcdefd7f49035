"""The layout's import rules, read from the source with ``ast`` (nothing is imported).

- ``core/`` (the ``vitalstream`` kernel) imports no other folder (``python -m vitalstream``
  runs the installed console script, found by its entry point, not by an import).
- ``operators/`` imports neither connectors, sinks nor stream, and no engine or client
  library (bytewax, faust, paho, redis, influxdb_client).
- ``connectors/`` and ``sinks/`` do not import each other.
- ``simulators/`` imports neither stream nor sinks.
- No cycle among module-level imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"core": "vitalstream", "operators": "vitalstream.operators",
           "stream": "vitalstream.stream", "connectors": "vitalstream.connectors",
           "sinks": "vitalstream.sinks", "simulators": "vitalstream.simulators"}
ENGINES = {"bytewax", "faust", "paho", "redis", "influxdb_client"}
FORBIDDEN = {
    "core": {"operators", "stream", "connectors", "sinks", "simulators"},
    "operators": {"connectors", "sinks", "stream"},
    "connectors": {"sinks"},
    "sinks": {"connectors"},
    "simulators": {"stream", "sinks"},
}


def _modules() -> dict[str, Path]:
    out = {}
    for folder, pkg in FOLDERS.items():
        for path in (ROOT / folder).rglob("*.py"):
            rel = path.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([pkg, *parts])] = path
    return out


MODULES = _modules()


def folder_of(module: str) -> str | None:
    best = None
    for folder, pkg in FOLDERS.items():
        if module == pkg or module.startswith(pkg + "."):
            if best is None or len(pkg) > len(FOLDERS[best]):
                best = folder
    return best


def _resolve(name: str, modules: dict[str, Path] = MODULES) -> str:
    """The longest known module that ``name`` is or lies in (``from x import y`` may name y)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name


def imports(path: Path, module: str, *, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    if top_level_only:  # top-level statements, including those under if/try at top level
        nodes = [n for stmt in tree.body for n in ast.walk(stmt)
                 if not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]
    out = set()
    pkg = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for n in nodes:
        if isinstance(n, ast.Import):
            out.update(a.name for a in n.names)
        elif isinstance(n, ast.ImportFrom):
            if n.level:
                base = pkg
                for _ in range(n.level - 1):
                    base = base.rpartition(".")[0]
                target = f"{base}.{n.module}" if n.module else base
            else:
                target = n.module or ""
            out.add(target)
            out.update(f"{target}.{a.name}" for a in n.names)
    return out


def violations(modules: dict[str, Path]) -> list[str]:
    bad = []
    for module, path in modules.items():
        src = folder_of(module)
        for name in imports(path, module, top_level_only=False):
            top = name.split(".")[0]
            if src == "operators" and top in ENGINES:
                bad.append(f"{module} imports the engine/client {name}")
            if top != "vitalstream":
                continue
            dst = folder_of(_resolve(name, modules) or name)
            if dst in FORBIDDEN.get(src, set()):
                bad.append(f"{module} ({src}/) imports {name} ({dst}/)")
    return sorted(set(bad))


def cycles(modules: dict[str, Path]) -> list[list[str]]:
    graph = {m: {_resolve(n, modules) for n in imports(p, m, top_level_only=True)
                 if n.startswith("vitalstream")} - {"", m}
             for m, p in modules.items()}
    # A module's package __init__ runs before it: importing a submodule of your own
    # package is not a cycle through that __init__.
    for m in graph:
        graph[m] = {d for d in graph[m] if not m.startswith(d + ".")}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def strong(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return found


def test_layout_import_directions() -> None:
    bad = violations(MODULES)
    assert not bad, "\n".join(bad)


def test_no_import_cycles() -> None:
    found = cycles(MODULES)
    assert not found, found


def test_the_rules_can_fail(tmp_path: Path) -> None:
    """A kernel module importing a runtime, operators importing an engine, and a cycle."""
    files = {"vitalstream.model": "from vitalstream.stream.app import Pipeline\n",
             "vitalstream.stream.app": "",
             "vitalstream.operators.x": "import redis\nfrom vitalstream.operators import y\n",
             "vitalstream.operators.y": "from vitalstream.operators.x import f\n"}
    modules = {}
    for name, text in files.items():
        path = tmp_path / f"{name}.py"
        path.write_text(text)
        modules[name] = path
    assert violations(modules) == [
        "vitalstream.model (core/) imports vitalstream.stream.app (stream/)",
        "vitalstream.model (core/) imports vitalstream.stream.app.Pipeline (stream/)",
        "vitalstream.operators.x imports the engine/client redis"]
    assert cycles(modules) == [["vitalstream.operators.x", "vitalstream.operators.y"]]
