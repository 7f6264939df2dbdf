"""The dataset catalogue: every ``benchmark/datasets/*.py`` that defines ``NAME``, found by
reading the source with :mod:`ast` (nothing imported), as the method and task registries do.

A dataset module declares module-level string constants; the catalogue reads ``NAME``
(required), ``VERSION``, ``LICENSE``, ``URL``, ``SIZE`` (download size, free text) and
``FOLDER`` (where :func:`download` puts it under the data root; default ``NAME``). f-strings
made of such constants (``VERSION = f"{SOURCE_VERSION}-p{PREPROCESS_VERSION}"``) are resolved.
A dataset counts as prepared when ``<data root>/<NAME>-*/done.json`` exists, the cache layout
every loader here uses (``ptbxl-prepared-...``, ``synthetic-v1-...``).
"""

from __future__ import annotations

import ast
import os
from dataclasses import dataclass
from pathlib import Path

from ecgbench.core.registry import UnknownNameError, did_you_mean

DATASETS_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    module: str  # "ecgbench.data.datasets.ptbxl"
    version: str
    license: str
    url: str
    size: str
    folder: str

    def location(self, root: Path) -> Path:
        return Path(root) / self.folder

    def prepared(self, root: Path) -> list[Path]:
        """Prepared cache folders under ``root`` (each finished with a done.json)."""
        return sorted(p.parent for p in Path(root).glob(f"{self.name}-*/done.json"))


def _constants(tree: ast.Module) -> dict[str, str]:
    """Module-level ``NAME = "..."`` and f-strings of earlier such constants."""
    found: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target, value = node.targets[0].id, node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            target, value = node.target.id, node.value
        else:
            continue
        text = _string(value, found)
        if text is not None:
            found[target] = text
    return found


def _string(node: ast.AST, known: dict[str, str]) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for part in node.values:
            if isinstance(part, ast.FormattedValue) and isinstance(part.value, ast.Name):
                if part.value.id not in known:
                    return None
                parts.append(known[part.value.id])
            elif isinstance(part, ast.Constant):
                parts.append(str(part.value))
            else:
                return None
        return "".join(parts)
    if isinstance(node, ast.Name):
        return known.get(node.id)
    return None


def scan(folder: Path = DATASETS_DIR) -> dict[str, DatasetEntry]:
    entries: dict[str, DatasetEntry] = {}
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("_"):
            continue
        values = _constants(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
        name = values.get("NAME")
        if not name:
            continue
        if name in entries:
            raise RuntimeError(f"dataset name {name!r} is defined twice: "
                               f"{entries[name].module} and {path.stem}")
        entries[name] = DatasetEntry(
            name=name, module=f"ecgbench.data.datasets.{path.stem}",
            version=values.get("VERSION", "?"), license=values.get("LICENSE", "?"),
            url=values.get("URL", ""), size=values.get("SIZE", ""),
            folder=values.get("FOLDER", name),
        )
    return entries


def entry(name: str) -> DatasetEntry:
    entries = scan()
    if name not in entries:
        raise UnknownNameError(f"unknown dataset {name!r}.{did_you_mean(name, sorted(entries))}"
                               " Run 'ecgbench data list' to see them all.")
    return entries[name]


def disk_size(path: Path) -> int:
    """Bytes of the files under ``path`` (the folder may itself be a symlink)."""
    path = Path(path).resolve()
    if path.is_file():
        return path.stat().st_size
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(folder, name)).st_size
            except OSError:
                pass
    return total


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"
