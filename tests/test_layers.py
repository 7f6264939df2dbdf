"""The package's layers: imports only go down, and no module imports itself round a circle.

Every ``import ecgbench...`` and ``from ecgbench... import`` in the harness, the methods and the
tasks counts, at module level or inside a function (a lazy import is still a dependency).
"""

from __future__ import annotations

import ast
import importlib
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FOLDERS = {"ecgbench": ROOT / "benchmark", "ecgbench.methods": ROOT / "methods", "ecgbench.tasks": ROOT / "tasks"}
# Bottom to top; a module may import its own layer and the ones before it.
LAYERS = ("core", "data", "models", "evaluation", "reporting", "running", "tools", "top")
# The package root (``__version__``), its alias table and the public contracts sit at the bottom.
BASE = {"ecgbench": "core", "ecgbench._moved": "core", "ecgbench.api": "core"}
# The one import that goes up on purpose: the package root's lazy ``__getattr__`` makes
# ``ecgbench.evaluate`` / ``ecgbench.load_results`` its public face (imported on first use only).
FACADE = {("ecgbench", "ecgbench.tools.python_api")}
# Plugins: methods build on the models, tasks on the data; neither reaches evaluation or above.
PLUGINS = {"ecgbench.methods": "models", "ecgbench.tasks": "data"}


def module_name(package: str, folder: Path, path: Path) -> str:
    parts = path.relative_to(folder).with_suffix("").parts
    parts = parts[:-1] if parts[-1] == "__init__" else parts
    return ".".join((package, *parts))


def all_modules() -> dict[str, Path]:
    found = {}
    for package, folder in FOLDERS.items():
        for path in sorted(folder.rglob("*.py")):
            name = module_name(package, folder, path)
            if package == "ecgbench" and name.split(".")[1:2] in (["methods"], ["tasks"]):
                continue
            found[name] = path
    return found


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The ecgbench modules ``name`` imports (``from pkg import module`` counts as the module)."""
    is_package = path.name == "__init__.py"
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("ecgbench")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = name.split(".") if is_package else name.split(".")[:-1]
                package = package[: len(package) - node.level + 1]
                base = ".".join(package + ([node.module] if node.module else []))
            if not base.startswith("ecgbench"):
                continue
            submodules = {f"{base}.{alias.name}" for alias in node.names} & modules.keys()
            found |= submodules or {base}
    return {module for module in found if module in modules and module != name}


def layer(module: str) -> str:
    if module in BASE:
        return BASE[module]
    for plugin, level in PLUGINS.items():
        if module == plugin or module.startswith(plugin + "."):
            return level
    part = module.split(".")[1]
    return part if part in LAYERS else "top"


def rank(module: str) -> int:
    # a plugin sits just above the layer it builds on, so the layer itself cannot import it
    plugin = any(module == p or module.startswith(p + ".") for p in PLUGINS)
    return 2 * LAYERS.index(layer(module)) + plugin


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    modules = all_modules()
    found = {name: imports_of(name, path, modules) for name, path in modules.items()}
    for module, target in FACADE:
        assert target in found[module], f"{module} no longer imports {target}: drop it from FACADE"
        found[module].discard(target)
    return found


def test_every_module_sits_in_a_known_layer(graph):
    top = sorted(m for m in graph if layer(m) == "top")
    assert top == ["ecgbench.__main__", "ecgbench.cli", "ecgbench.cli.__main__", "ecgbench.cli.arguments",
                   "ecgbench.cli.commands", "ecgbench.cli.parser"], "put new modules in a layer's sub-package"


def test_imports_only_go_down(graph):
    upward = [f"{m} ({layer(m)}) imports {d} ({layer(d)})" for m, deps in sorted(graph.items()) for d in sorted(deps)
              if rank(d) > rank(m)]
    assert not upward, "\n".join(upward)


def test_no_circles(graph):
    """Depth-first search; a back edge is a circle, printed as its path."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    circles: list[str] = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for dep in sorted(graph[module]):
            if state.get(dep) == 1:
                circles.append(" -> ".join(path[path.index(dep):] + [module, dep]) if dep in path
                               else f"{module} -> {dep}")
            elif dep not in state:
                visit(dep, path + [module])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [])
    assert not circles, "\n".join(circles)


def test_the_checks_catch_an_upward_import_and_a_circle():
    assert rank("ecgbench.running.runner") > rank("ecgbench.data.adapt")
    assert rank("ecgbench.methods.simclr") > rank("ecgbench.models.method")
    assert rank("ecgbench.methods.simclr") < rank("ecgbench.evaluation.probes")
    assert rank("ecgbench.tasks.ptbxl") < rank("ecgbench.models.method")
    fake = {"ecgbench.core.a": Path("a.py"), "ecgbench.core.b": Path("b.py")}
    source = {"a.py": "from ecgbench.core import b\n", "b.py": "import ecgbench.core.a\n"}
    original = Path.read_text
    try:
        Path.read_text = lambda self, *a, **k: source[str(self)]
        edges = {name: imports_of(name, path, fake) for name, path in fake.items()}
    finally:
        Path.read_text = original
    assert edges == {"ecgbench.core.a": {"ecgbench.core.b"}, "ecgbench.core.b": {"ecgbench.core.a"}}
    with pytest.raises(AssertionError, match="ecgbench.core.a -> ecgbench.core.b -> ecgbench.core.a"):
        test_no_circles(edges)


@pytest.mark.parametrize("old, new", [("ecgbench.runner", "ecgbench.running.runner"),
                                      ("ecgbench.datasets.ptbxl", "ecgbench.data.datasets.ptbxl"),
                                      ("ecgbench.method", "ecgbench.models.method")])
def test_old_import_paths_give_the_same_module_with_a_warning(old, new):
    sys.modules.pop(old, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)
    assert module.__name__ == new and module.__spec__.name == new
    assert any(issubclass(w.category, DeprecationWarning) and new in str(w.message) for w in caught)


def test_every_sub_package_is_listed_for_the_wheel():
    """pyproject.toml lists the packages by hand (package-dir maps ecgbench to benchmark/), so a new
    sub-package missing there would be left out of a built wheel."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {module_name("ecgbench", FOLDERS["ecgbench"], init) for init in FOLDERS["ecgbench"].rglob("__init__.py")}
    assert found - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"
    assert {"ecgbench.methods", "ecgbench.tasks"} <= listed
