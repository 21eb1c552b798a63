"""The shape of the package: the algorithm core imports no heavy framework, no module imports
itself back through others, the report draws without the method's code, modules stay small."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "disco_ray"
CORE = ["disco_ray", "disco_ray.outputs", "disco_ray.io", "disco_ray.disagreement",
        "disco_ray.selection", "disco_ray.signatures", "disco_ray.metamodels",
        "disco_ray.design", "disco_ray.condensed", "disco_ray.search", "disco_ray.evaluation",
        "disco_ray.methods", "disco_ray.cli"]
ALGORITHM = ("disco_ray.search", "disco_ray.condensed", "disco_ray.evaluation",
             "disco_ray.analysis", "disco_ray.design", "disco_ray.signatures",
             "disco_ray.uncertainty",
             "disco_ray.disagreement", "disco_ray.metamodels", "disco_ray.selection",
             "disco_ray.methods", "disco_ray.irt")
MAX_LINES = 400


def import_graph() -> dict[str, set[str]]:
    """{module: the disco_ray modules it imports}, function-level imports included."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path

    def resolve(name: str, attribute: str | None = None) -> str:
        if attribute and f"{name}.{attribute}" in modules:
            return f"{name}.{attribute}"
        while name not in modules:
            name = name.rpartition(".")[0]
        return name

    graph = {}
    for module, path in modules.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                edges |= {resolve(a.name) for a in node.names if a.name.startswith("disco_ray")}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("disco_ray"):
                edges |= {resolve(node.module, a.name) for a in node.names}
        graph[module] = edges - {module}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The import graph's cycles: strongly connected components of two or more modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph.get(node, ()):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while not component or component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_core_imports_no_heavy_framework():
    code = ("import sys\n" + "".join(f"import {m}\n" for m in CORE)
            + "print(sorted(m for m in ('ray', 'torch', 'vllm', 'transformers') "
              "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_the_package_has_no_import_cycle():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_report_imports_no_algorithm_module():
    """The report draws what the run stored: nothing under disco_ray.report reaches, even
    indirectly, the code that condenses, evaluates or scores disagreement."""
    graph = import_graph()
    reached, todo = set(), [m for m in graph if m.startswith("disco_ray.report")]
    while todo:
        module = todo.pop()
        if module not in reached:
            reached.add(module)
            todo += graph[module]
    assert sorted(m for m in reached if m.startswith(ALGORITHM)) == []


def test_every_module_stays_under_400_lines():
    long = {str(p.relative_to(PACKAGE)): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text().splitlines())) >= MAX_LINES}
    assert long == {}
