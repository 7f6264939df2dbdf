"""Registries of methods and tasks, found by scanning their folders.

Adding a method is adding one file to ``methods/``; adding a task is adding one file to
``tasks/``. Nothing has to be imported or listed by hand. Files whose name starts with ``_``
(such as ``_template.py``) are skipped.

Scanning reads the source with :mod:`ast` instead of importing it, so ``ecgbench list`` and
``--help`` stay fast and never import torch (the import-time cost MTEB users complained about).
A module is imported only when one of its entries is actually used.

What counts as an entry:

* a top-level class with a class attribute ``name = "some-name"`` (methods); its one-line
  description is the first line of the class docstring; ``alias_of = "other-name"`` marks a
  class that only renames another (listed, runnable by name, left out of ``all``);
* a top-level assignment ``X = Task(name="some-name", description="...", ...)`` (tasks).
"""

from __future__ import annotations

import ast
import difflib
import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class UnknownNameError(KeyError):
    """An unknown registry name; its message carries the "did you mean" suggestion."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True)
class Entry:
    name: str
    module: str  # dotted module path, e.g. "ecgbench.methods.simclr"
    attribute: str  # class or variable name inside the module
    description: str
    path: Path
    alias_of: str | None = None  # a method that only renames another: skipped by "all"


def did_you_mean(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def _string_constant(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _class_string(node: ast.ClassDef, attribute: str) -> str | None:
    """A string class attribute, plain (``name = "x"``) or annotated (``name: str = "x"``)."""
    for statement in node.body:
        if isinstance(statement, ast.Assign):
            targets = [t.id for t in statement.targets if isinstance(t, ast.Name)]
        elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            targets = [statement.target.id]
        else:
            continue
        if attribute in targets:
            return _string_constant(statement.value)
    return None


def _call_entry(node: ast.Assign) -> tuple[str, str, str] | None:
    """``X = Task(name="n", description="d")`` -> ("X", "n", "d")."""
    if not (isinstance(node.value, ast.Call) and len(node.targets) == 1):
        return None
    target = node.targets[0]
    if not isinstance(target, ast.Name):
        return None
    keywords = {k.arg: _string_constant(k.value) for k in node.value.keywords if k.arg}
    if keywords.get("name") is None:
        return None
    return target.id, keywords["name"], keywords.get("description") or ""


def scan_file(path: Path, module: str) -> list[Entry]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    entries = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            name = _class_string(node, "name")
            if name:
                doc = (ast.get_docstring(node) or "").strip().splitlines()
                entries.append(Entry(name, module, node.name, doc[0] if doc else "", path,
                                     _class_string(node, "alias_of")))
        elif isinstance(node, ast.Assign):
            found = _call_entry(node)
            if found:
                attribute, name, description = found
                entries.append(Entry(name, module, attribute, description, path))
    return entries


class Registry:
    """Name -> lazily imported object, discovered by scanning one package folder."""

    def __init__(self, package: str, kind: str):
        self.package = package
        self.kind = kind  # "method" or "task", used in messages
        self._entries: dict[str, Entry] | None = None

    @property
    def entries(self) -> dict[str, Entry]:
        if self._entries is None:
            self._entries = self._scan()
        return self._entries

    def _scan(self) -> dict[str, Entry]:
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError(f"package {self.package} not found; is ecgbench installed?")
        folder = Path(list(spec.submodule_search_locations)[0])
        entries: dict[str, Entry] = {}
        for path in sorted(folder.glob("*.py")):
            if path.name.startswith("_"):
                continue
            for entry in scan_file(path, f"{self.package}.{path.stem}"):
                if entry.name in entries:
                    other = entries[entry.name].path.name
                    raise RuntimeError(
                        f"{self.kind} name {entry.name!r} is defined twice: {other} and {path.name}"
                    )
                entries[entry.name] = entry
        return entries

    def names(self) -> list[str]:
        return sorted(self.entries)

    def entry(self, name: str) -> Entry:
        if name not in self.entries:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}.{did_you_mean(name, self.names())}"
                f" Run 'ecgbench list {self.kind}s' to see them all."
            )
        return self.entries[name]

    def get(self, name: str) -> Any:
        entry = self.entry(name)
        return getattr(importlib.import_module(entry.module), entry.attribute)

    def select(self, spec: str | list[str]) -> list[str]:
        """``"all"`` or ``"a,b"`` (or a list) -> validated names, in the order given."""
        if isinstance(spec, str):
            if spec.strip() == "all":  # aliases would only repeat the method they rename
                return [n for n in self.names() if not self.entries[n].alias_of]
            spec = [s for s in (part.strip() for part in spec.split(",")) if s]
        if not spec:
            raise UnknownNameError(f"no {self.kind}s selected")
        for name in spec:
            self.entry(name)
        return list(dict.fromkeys(spec))


METHODS = Registry("ecgbench.methods", "method")
TASKS = Registry("ecgbench.tasks", "task")
