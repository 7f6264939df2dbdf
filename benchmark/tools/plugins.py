"""Methods of one's own: ``ecgbench new method`` writes a template file, ``ecgbench check-method``
runs the method contract (:mod:`ecgbench.models.contract`) on a file outside the package."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from pathlib import Path

from ecgbench.core.registry import METHODS, RegistryError, load_entry, scan_external

NAME = re.compile(r"[a-z][a-z0-9]*(-[a-z0-9]+)*")

# (text in methods/_template.py, what a stand-alone copy says instead)
_TEMPLATE_EDITS = [
    ("   (Copy to methods/<name>.py and fill in.)", ""),
    ("This file is skipped by discovery (leading underscore). A copy is found by scanning methods/:",
     "Found by scanning an include path (``ecgbench run --include-path DIR``), as methods/ is:"),
    ("* tests/methods/test_method_contract.py covers the new method without new test code.",
     "* ``ecgbench check-method FILE`` runs the method contract on this file."),
]


def template_text(name: str) -> str:
    """methods/_template.py renamed to ``name`` (class, registry name, first docstring line)."""
    spec = importlib.util.find_spec("ecgbench.methods._template")
    text = Path(spec.origin).read_text(encoding="utf-8")
    camel = "".join(part.capitalize() for part in name.split("-")) + "Method"
    renames = [('class TemplateMethod(Method):', f"class {camel}(Method):"),
               ('name = "template"', f'name = "{name}"'), ('"""<Method name>:', f'"""{name}:')]
    for old, new in renames:
        if old not in text:  # the template changed shape: fail here, not in the user's file
            raise RuntimeError(f"methods/_template.py no longer contains {old!r}; update ecgbench.tools.plugins")
        text = text.replace(old, new, 1)
    for old, new in _TEMPLATE_EDITS:
        text = text.replace(old, new)
    return text


def new_method(name: str, out: Path) -> Path:
    """Write ``out/<name>.py`` (dashes as underscores), a working method to fill in."""
    if not NAME.fullmatch(name):
        raise RegistryError(f"new method {name!r}: a name is lower-case letters and digits joined by dashes, e.g. my-simclr")
    builtin = METHODS.entries.get(name)
    if builtin is not None:
        raise RegistryError(f"new method {name!r}: clashes with the method in {builtin.path}; choose another name")
    path = out / f"{name.replace('-', '_')}.py"
    if path.exists():
        raise RegistryError(f"{path}: already exists; remove it or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(template_text(name), encoding="utf-8")
    return path


def check_method_file(path: Path, say: Callable[[str], None] = print) -> int:
    """Run the contract on every method class of ``path``; say one line per check. Returns the
    number of failed checks."""
    from ecgbench.models.contract import run_checks

    if not path.is_file():
        raise RegistryError(f"{path}: no such file; give a Python file with a method class (name = \"...\")")
    entries = [e for e in scan_external(path.resolve()) if e.form == "class"]
    if not entries:
        raise RegistryError(f"{path}: defines no method (a top-level class with name = \"...\")")
    failures = 0
    for entry in entries:
        for check, failure in run_checks(load_entry(entry), entry.name, entry.description, entry.path):
            failures += failure is not None
            say(f"{entry.name}: {check}: " + ("ok" if failure is None else f"FAILED: {failure}"))
    return failures
