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

Entries can also come from outside the package: folders given with ``--include-path`` (or
``$ECGBENCH_INCLUDE_PATH``, separated by ``os.pathsep``), scanned the same way (a class with
``name`` is a method, ``X = Task(name=...)`` a task), and the entry-point groups
``ecgbench.methods`` / ``ecgbench.tasks`` of installed packages (value ``package.module`` or
``package.module:Attribute``). An external entry carries its file's content hash (``digest``),
which goes into its run ids and task keys, so an edited file never reuses stale results. A bad
external file is a one-line :class:`RegistryError` naming it.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import hashlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INCLUDE_ENV = "ECGBENCH_INCLUDE_PATH"
BUILT_IN = "built-in"


class UnknownNameError(KeyError):
    """An unknown registry name; its message carries the "did you mean" suggestion."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class RegistryError(RuntimeError):
    """A bad method or task source (a damaged external file, a clashing name); one line."""


@dataclass(frozen=True)
class Entry:
    name: str
    module: str  # dotted module path, e.g. "ecgbench.methods.simclr"
    attribute: str  # class or variable name inside the module
    description: str
    path: Path
    alias_of: str | None = None  # a method that only renames another: skipped by "all"
    form: str = "class"  # "class" (``name = ...`` in a class body) or "call" (``X = Task(name=...)``)
    origin: str = BUILT_IN  # BUILT_IN, "path" or "entry point <distribution>"
    digest: str | None = None  # content hash of an external file (None: built-in)

    @property
    def source(self) -> str:
        """Where the entry comes from, for ``ecgbench list``."""
        return str(self.path) if self.origin == "path" else self.origin


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
                entries.append(Entry(name, module, attribute, description, path, form="call"))
    return entries


def file_digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def scan_external(path: Path, module: str | None = None, origin: str = "path") -> list[Entry]:
    """The entries of a file outside the package, stamped with its origin and content hash; a
    syntax error or a file with no entry is a one-line RegistryError naming the file."""
    try:
        digest = file_digest(path)
        module = module or f"_ecgbench_external_{path.stem}_{digest}"
        entries = scan_file(path, module)
    except SyntaxError as error:
        raise RegistryError(f"{path}:{error.lineno}: syntax error ({error.msg}); "
                            "fix it or move the file out of the include path") from None
    except (OSError, UnicodeDecodeError) as error:
        raise RegistryError(f"{path}: unreadable ({error}); an include path holds UTF-8 Python files") from None
    if not entries:
        raise RegistryError(f"{path}: defines no method (a class with name = \"...\") and no task "
                            "(X = Task(name=\"...\", ...)); add one, or start the file name with _ to skip it")
    return [dataclasses.replace(e, origin=origin, digest=digest) for e in entries]


_INCLUDED: list[Path] = []  # folders given with --include-path in this process


def include_paths() -> list[Path]:
    """The external folders: those given with :func:`include`, then ``$ECGBENCH_INCLUDE_PATH``'s."""
    from_env = [Path(p).expanduser().resolve() for p in os.environ.get(INCLUDE_ENV, "").split(os.pathsep) if p.strip()]
    for folder in from_env:
        if not folder.is_dir():
            raise RegistryError(f"${INCLUDE_ENV}: {folder} is not a folder; give folders of method or task "
                                f"files separated by {os.pathsep!r}")
    return list(dict.fromkeys([*_INCLUDED, *from_env]))


def include(paths: list[str | Path]) -> None:
    """Add folders scanned for methods and tasks (``--include-path``); each must exist."""
    for raw in paths:
        folder = Path(raw).expanduser().resolve()
        if not folder.is_dir():
            raise RegistryError(f"--include-path {raw}: not a folder; give a folder of method or task files")
        if folder not in _INCLUDED:
            _INCLUDED.append(folder)
    for registry in (METHODS, TASKS):
        registry.forget()


def _included_files() -> list[Path]:
    return [path for folder in include_paths() for path in sorted(folder.glob("*.py"))
            if not path.name.startswith("_")]


def _entry_point_files(group: str) -> list[tuple[Path, str, str, str]]:
    """(file, module, attribute or "", origin) of each entry point of ``group``, found unimported."""
    from importlib.metadata import entry_points

    found = []
    for point in entry_points(group=group):
        module, _, attribute = point.value.partition(":")
        where = f"entry point {point.name} = {point.value} ({group})"
        try:
            spec = importlib.util.find_spec(module.strip())
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            raise RegistryError(f"{where}: module {module.strip()!r} not found; the value must name an "
                                "installed Python module, e.g. mypkg.methods or mypkg.methods:MyMethod")
        dist = point.dist.name if point.dist else point.name
        found.append((Path(spec.origin), module.strip(), attribute.strip(), f"entry point {dist}"))
    return found


def load_entry(entry: Entry) -> Any:
    """The object an entry names, imported now (an include-path file under its own module name)."""
    module = _load_file_module(entry) if entry.origin == "path" else importlib.import_module(entry.module)
    return getattr(module, entry.attribute)


def _load_file_module(entry: Entry) -> Any:
    """Import an include-path file under its own module name (once per content hash)."""
    if entry.module in sys.modules:
        return sys.modules[entry.module]
    spec = importlib.util.spec_from_file_location(entry.module, entry.path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[entry.module] = module  # dataclasses and pickling look the module up by name
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # noqa: BLE001 - any failure of a user's file is one line naming it
        del sys.modules[entry.module]
        raise RegistryError(f"{entry.path}: import failed ({type(error).__name__}: {error})") from None
    return module


class Registry:
    """Name -> lazily imported object, discovered by scanning one package folder."""

    def __init__(self, package: str, kind: str, form: str = "class",
                 stamp: Callable[[Any, str], Any] | None = None):
        self.package = package
        self.kind = kind  # "method" or "task", used in messages
        self.form = form  # which declarations of an external file are this registry's
        self.stamp = stamp  # puts an external entry's digest on its object (tasks: into the key)
        self._entries: dict[str, Entry] | None = None

    def forget(self) -> None:
        """Scan again on next use (after the include paths changed)."""
        self._entries = None

    @property
    def entries(self) -> dict[str, Entry]:
        if self._entries is None:
            self._entries = self._scan()
        return self._entries

    def _scan(self) -> dict[str, Entry]:
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise RuntimeError(f"package {self.package} not found; is ecgbench installed?")
        folder = Path(next(iter(spec.submodule_search_locations)))
        entries: dict[str, Entry] = {}
        for path in sorted(folder.glob("*.py")):
            if path.name.startswith("_"):
                continue
            for entry in scan_file(path, f"{self.package}.{path.stem}"):
                if entry.name in entries:
                    other = entries[entry.name].path.name
                    raise RegistryError(
                        f"{self.kind} name {entry.name!r} is defined twice: {other} and {path.name}"
                    )
                entries[entry.name] = entry
        self._add_external(entries)
        return entries

    def _external(self) -> list[Entry]:
        found = [e for path in _included_files() for e in scan_external(path) if e.form == self.form]
        for path, module, attribute, origin in _entry_point_files(f"ecgbench.{self.kind}s"):
            found += [e for e in scan_external(path, module, origin)
                      if e.form == self.form and attribute in ("", e.attribute)]
        return found

    def _add_external(self, entries: dict[str, Entry]) -> None:
        for entry in self._external():
            other = entries.get(entry.name)
            if other is not None and other.origin == BUILT_IN:
                raise RegistryError(f"{entry.path}: {self.kind} name {entry.name!r} clashes with the built-in "
                                    f"{self.kind} in {other.path.name}; choose another name")
            if other is not None and other.path != entry.path:
                raise RegistryError(f"{self.kind} name {entry.name!r} is defined twice: {other.path} and {entry.path}")
            entries[entry.name] = entry

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
        found = load_entry(entry)
        return self.stamp(found, entry.digest) if self.stamp and entry.digest else found

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


def _stamp_task(task: Any, digest: str) -> Any:
    return dataclasses.replace(task, source_hash=digest)


METHODS = Registry("ecgbench.methods", "method")
TASKS = Registry("ecgbench.tasks", "task", form="call", stamp=_stamp_task)
