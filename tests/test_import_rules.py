"""Who may import whom (issue 17; docs/ARCHITECTURE.md).

* Direction: the runtime (``star_plugin`` itself, ``star_plugin.gen``, ``star_plugin.export``)
  never imports the tools (``star_plugin.training``, ``star_plugin.gui``, ``star_plugin.bench``).
  Checked twice: each runtime module is imported on its own in a fresh interpreter and must
  not load a tool module; and every import statement of a runtime module, those inside
  functions included, is read from its source (an import inside a function runs only when the
  function does, so importing the module could not catch it).
  The one exception is the command line: ``star bench speed`` and ``star train`` run tools,
  so their command modules import them, but only inside ``run``, never at module level (the
  table in ``star_plugin.cli`` names the tools' own command modules as strings).
* No import cycles among the project's modules (runtime and tools). Imports inside functions
  count: they put off the cost of an import, not the dependency, and a cycle through one still
  means two modules that need each other. A package ``__init__``'s ``_LAZY`` table (names it
  imports on first use) counts as imports too. That a module imports its parent package on the
  way (``import star_plugin.x`` first runs ``star_plugin/__init__.py``) is Python's doing and is
  not counted; a module naming its package (``from . import name``) is.

The module graph is read with ``ast`` from the folders ``pyproject.toml`` maps under
``star_plugin`` (``package-dir``).
"""
from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ("star_plugin.training", "star_plugin.gui", "star_plugin.bench")
#: Runtime modules allowed to import tools inside functions (never at module level), and why.
ENTRY_POINTS = {"star_plugin.commands.bench_speed": "`star bench speed` runs the scan and "
                                                   "model benchmarks",
                "star_plugin.commands.train": "`star train vae/gen` run the trainers"}


def _package_dirs() -> dict:
    text = (ROOT / "pyproject.toml").read_text()
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10: the one package-dir line, read by hand
        line = next(x for x in text.splitlines() if x.startswith("package-dir"))
        return dict(re.findall(r'"([\w.]+)"\s*=\s*"([\w./]+)"', line))
    return tomllib.loads(text)["tool"]["setuptools"]["package-dir"]


def _modules() -> dict:
    """{module name: (path, is_package)} for every module installed under ``star_plugin``."""
    dirs = _package_dirs()
    mapped = {folder for package, folder in dirs.items() if package != "star_plugin"}
    modules = {}
    for package, folder in dirs.items():
        base = ROOT / folder
        for path in sorted(base.rglob("*.py")):
            parts = list(path.relative_to(base).with_suffix("").parts)
            if package == "star_plugin" and parts[0] in mapped:
                continue
            is_package = parts[-1] == "__init__"
            if is_package:
                parts = parts[:-1]
            modules[".".join([package, *parts])] = (path, is_package)
    return modules


MODULES = _modules()


def _is_tool(name: str) -> bool:
    return any(name == tool or name.startswith(tool + ".") for tool in TOOLS)


def _runtime(name: str) -> bool:
    return (name == "star_plugin" or name.startswith("star_plugin.")) and not _is_tool(name)


RUNTIME = sorted(name for name in MODULES if _runtime(name))


def _targets(module: str, is_package: bool, node) -> list:
    """The project modules an import statement runs (not counting parent packages)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            base = module.split(".")[:len(module.split(".")) - node.level + is_package]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module
        names = [target]
        subs = [f"{target}.{alias.name}" for alias in node.names]
        if any(sub in MODULES for sub in subs):  # from package import submodule
            names = [sub for sub in subs if sub in MODULES]
            if any(f"{target}.{alias.name}" not in MODULES for alias in node.names):
                names.append(target)  # ...and names defined in the package itself
    found = []
    for name in names:
        # ``import a.b.c`` binds a but runs a.b.c: the deepest project module named
        parts = name.split(".")
        for i in range(len(parts), 0, -1):
            if ".".join(parts[:i]) in MODULES:
                found.append(".".join(parts[:i]))
                break
    return found


def _lazy_table(tree) -> list:
    """The module names in a package's ``_LAZY = {name: ".module"}`` table."""
    for node in tree.body:
        if (isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_LAZY"
                                                 for t in node.targets)
                and isinstance(node.value, ast.Dict)):
            return [v.value for v in node.value.values if isinstance(v, ast.Constant)]
    return []


def import_graph() -> dict:
    """{module: {imported project module: True if at module level, False if only inside
    functions}}."""
    graph = {}
    for module, (path, is_package) in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        edges: dict = {}

        def visit(node, in_function):
            for child in ast.iter_child_nodes(node):
                inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                           ast.Lambda))
                if isinstance(child, (ast.Import, ast.ImportFrom)):
                    for target in _targets(module, is_package, child):
                        if target != module:
                            edges[target] = edges.get(target, False) or not in_function
                visit(child, inside)

        visit(tree, False)
        for relative in _lazy_table(tree):
            target = (module + relative) if relative.startswith(".") else relative
            if target in MODULES:
                edges.setdefault(target, False)
        graph[module] = edges
    return graph


def cycles(graph: dict) -> list:
    """The strongly connected components with more than one module (Tarjan), sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def connect(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph) + 100))
    try:
        for v in sorted(graph):
            if v not in index:
                connect(v)
    finally:
        sys.setrecursionlimit(limit)
    return sorted(found)


def test_the_graph_sees_the_mapped_folders():
    for name in ("star_plugin.cli", "star_plugin.gen.generator", "star_plugin.export.exporter",
                 "star_plugin.training.trainer", "star_plugin.gui.app", "star_plugin.bench.recon"):
        assert name in MODULES
    assert "star_plugin.export.exporter" in RUNTIME and "star_plugin.gen.store" in RUNTIME
    assert not any(_is_tool(name) for name in RUNTIME)
    graph = import_graph()
    assert graph["star_plugin.training.corpus.manifest"]["star_plugin.corpus_manifest"] is True
    assert "star_plugin.model_io" in graph["star_plugin"]  # the lazy table counts


def test_no_import_cycles():
    found = cycles({m: set(edges) for m, edges in import_graph().items()})
    assert not found, "import cycles (imports inside functions included):\n" + "\n".join(
        " <-> ".join(component) for component in found)


def test_runtime_imports_no_tool_in_its_source():
    graph = import_graph()
    bad = []
    for module in RUNTIME:
        for target, module_level in graph[module].items():
            if _is_tool(target) and (module not in ENTRY_POINTS or module_level):
                bad.append(f"{module} imports {target}"
                           + (" at module level" if module_level else " (inside a function)"))
    assert not bad, "the runtime must not import training, gui or bench:\n" + "\n".join(bad)


# Imports each module in a child forked from a fresh interpreter that has loaded only
# third-party libraries (so torch is imported once, not once per module): every child starts
# with no star_plugin module loaded. Without fork (Windows), one interpreter per module.
_DRIVER = r"""
import importlib, json, os, sys

TOOLS = %r


def check(name):
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and not exc.name.startswith("star_plugin"):
            return {"missing": exc.name}
        return {"error": repr(exc)}
    except Exception as exc:  # noqa: BLE001
        return {"error": repr(exc)}
    return {"tools": sorted(m for m in sys.modules
                            if any(m == t or m.startswith(t + ".") for t in TOOLS))}


names = sys.argv[1:]
if not hasattr(os, "fork"):
    print(json.dumps({names[0]: check(names[0])}))
    sys.exit(0)
for lib in ("numpy", "torch", "onnx", "onnxruntime", "soundfile", "soxr", "safetensors"):
    try:
        importlib.import_module(lib)
    except Exception:  # noqa: BLE001
        pass
assert not [m for m in sys.modules if m.split(".")[0] == "star_plugin"]
results = {}
for name in names:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        with os.fdopen(write, "w") as out:
            out.write(json.dumps(check(name)))
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        text = pipe.read()
    os.waitpid(pid, 0)
    results[name] = json.loads(text) if text else {"error": "the child died"}
print(json.dumps(results))
"""


def _import_alone(names) -> dict:
    driver = _DRIVER % (TOOLS,)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    batches = [names] if hasattr(os, "fork") else [[name] for name in names]
    results = {}
    for batch in batches:
        run = subprocess.run([sys.executable, "-c", driver, *batch], capture_output=True,
                             text=True, env=env, cwd=ROOT, timeout=600)
        assert run.returncode == 0, run.stderr[-3000:]
        results.update(json.loads(run.stdout.strip().splitlines()[-1]))
    return results


def test_each_runtime_module_alone_loads_no_tool():
    results = _import_alone(RUNTIME)
    errors = {name: r["error"] for name, r in results.items() if "error" in r}
    assert not errors, f"runtime modules that fail to import: {errors}"
    missing = {name: r["missing"] for name, r in results.items() if "missing" in r}
    # Optional extras only (onnx for the exporter); every other runtime module must import.
    assert all(name.startswith("star_plugin.export") for name in missing), missing
    bad = {name: r["tools"] for name, r in results.items() if r.get("tools")}
    assert not bad, f"runtime modules that load training, gui or bench: {bad}"
    if missing:
        pytest.skip(f"not importable without optional packages: {missing}")
