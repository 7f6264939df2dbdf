"""What a paper layout is, and where the layouts come from: the ``layouts:`` section of each
``results/reported/<source>.yaml``, beside the tables they re-lay.

Adding a paper's table is adding (or extending) a file there, as adding a method is adding a file
to ``methods/``: nothing in Python names a layout. One entry (``?`` marks an optional key; every key
but ``order`` is the :class:`Layout` field of the same name)::

    layouts:
      - name: nerula-table3                  # unique over the folder
        order?: 3                            # place in 'ecgbench table --layout list'
        tables: [nerula-table3]              # reported table ids (of any file), rendered in this order
        description: "NERULA Table 3: ..."
        pretrain?: cinc2020                  # corpus of every self-supervised row; null: its tasks' dataset
        pretrain_source?: "seed 002 ..."     # where the source says so, or the assumption we made
        tasks?: {cinc2017-af: cinc2017-af3}  # the source's task variant per YAML task
        rows?:                               # per YAML row method: a RowRun
          byol: {method?: nerula-ladder-byol, reading?: "...", reported_only?: "why"}
        readings?: ["..."]                   # what we read where the source is silent
        settings?: [eval.clustering=true]    # --set assignments the run needs
        protocol?: head                      # the source's evaluation protocol (default frozen-probe)
        tolerances?: {mae: {amount: 1.0, relative?: false}}   # per metric, over DEFAULT_TOLERANCES
        column_tolerances?: {nerula-table3.svc_acc: {amount: 0.1}}

Layouts are listed by ``order``, those without one after the others, ties by file name and
position. YAML anchors (``&x``, ``*x``, ``<<: *x``) share settings between the layouts of a file.
A bad key or value is refused when the layouts load, in one line naming the file and the layout.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ecgbench.evaluation.protocols import PROTOCOLS
from ecgbench.reporting.reported import METRICS, Column, Table, load_reported

PROTOCOL = "frozen-probe"
_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


class LayoutError(ValueError):
    """Unknown layout, bad layout request or bad layout entry; one line for the user."""


# ----- tolerances ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Tolerance:
    """How far ours may be from the reported value before it is flagged: ``amount`` absolute
    (in the column's printed unit), or a fraction of the reported value when ``relative``."""

    amount: float
    relative: bool = False

    def exceeded(self, ours: float, reported: float) -> bool:
        allowed = self.amount * abs(reported) if self.relative else self.amount
        return abs(ours - reported) > allowed + 1e-12

    def describe(self, scale: str | None = None) -> str:
        if self.relative:
            return f"±{self.amount:.0%} of the reported value"
        amount = self.amount * 100 if scale == "percent" else self.amount
        unit = " points" if scale == "percent" else ""
        return f"±{amount:g}{unit} absolute"


# Defaults per metric, in fraction units for bounded metrics (scaled for percent columns).
# 0.05 on accuracy/F1/AUROC is a chosen threshold, not a derived one: a gap that large is worth
# a reader's look (protocols differ between papers and us; see each layout's header). MAE in years, R2 absolute,
# clustering indices relative (their scale depends on the embedding dimension). Training hours
# are never compared (hardware differs), so they have no tolerance.
DEFAULT_TOLERANCES: dict[str, Tolerance] = {
    "accuracy": Tolerance(0.05),
    "macro_f1": Tolerance(0.05),
    "macro_auroc": Tolerance(0.05),
    "f1_class": Tolerance(0.05),
    "mae": Tolerance(1.0),
    "r2": Tolerance(0.10),
    "dbi": Tolerance(0.25, relative=True),
    "silhouette": Tolerance(0.05),
    "chi": Tolerance(0.25, relative=True),
}


# ----- layouts -------------------------------------------------------------------------------
@dataclass(frozen=True)
class RowRun:
    """How ecgbench runs one row of a source's table: the registered method that stands for it
    (when it is not the YAML row's own), or why the row is the source's number only."""

    method: str | None = None
    reading: str = ""  # the reading taken where the source is silent about this row
    reported_only: str = ""  # non-empty: nothing of ours reproduces the row, and why


@dataclass(frozen=True)
class Layout:
    name: str
    tables: tuple[str, ...]  # reported table ids, rendered in this order
    description: str
    tolerances: dict[str, Tolerance] = field(default_factory=dict)  # per metric, over the defaults
    column_tolerances: dict[str, Tolerance] = field(default_factory=dict)  # per "table.column" id
    settings: tuple[str, ...] = ()  # --set assignments the run needs (before the user's own)
    # The protocol of the source. ``pretrain``: the corpus every self-supervised row pretrains on
    # (None: the dataset its tasks evaluate); ``pretrain_source``: where the source says so, or
    # the assumption we made; ``tasks``: the source's task variant per YAML task; ``rows``: per
    # YAML row method; ``readings``: what we read where the source is silent.
    pretrain: str | None = None
    pretrain_source: str = ""
    tasks: dict[str, str] = field(default_factory=dict)
    rows: dict[str, RowRun] = field(default_factory=dict)
    readings: tuple[str, ...] = ()
    protocol: str = PROTOCOL  # the evaluation protocol the source used (ecgbench.evaluation.protocols)

    def row_run(self, method: str) -> RowRun:
        """The row's protocol, its method filled in."""
        run = self.rows.get(method, RowRun())
        return RowRun(run.method or method, run.reading, run.reported_only)

    def task(self, task: str) -> str:
        return self.tasks.get(task, task)

    def tolerance(self, table: Table, column: Column) -> Tolerance | None:
        if f"{table.id}.{column.id}" in self.column_tolerances:
            return self.column_tolerances[f"{table.id}.{column.id}"]
        key = "f1_class" if column.metric.startswith("f1_") else column.metric
        return self.tolerances.get(key, DEFAULT_TOLERANCES.get(key))

    def reported_tables(self, folder: str | Path | None = None) -> list[Table]:
        tables = {t.id: t for s in load_reported(folder) for t in s.tables}
        missing = [t for t in self.tables if t not in tables]
        if missing:
            raise LayoutError(f"layout {self.name}: no reported table {', '.join(missing)} in results/reported")
        return [tables[table_id] for table_id in self.tables]


# ----- reading layouts from the reported files -----------------------------------------------
_LAYOUT_KEYS = tuple(f.name for f in fields(Layout)) + ("order",)
_ROW_KEYS = tuple(f.name for f in fields(RowRun))
_TOLERANCE_KEYS = tuple(f.name for f in fields(Tolerance))
_TOLERANCE_METRICS = (*METRICS, "f1_class")  # f1_class: every f1_<class> column


@dataclass(frozen=True)
class _Entry:
    """Where a layout entry is, for one-line errors: its file and its name (or position)."""

    file: str
    label: str

    def fail(self, key: str, problem: str) -> LayoutError:
        return LayoutError(f"{self.file}: {self.label}: {key}: {problem}" if key else
                           f"{self.file}: {self.label}: {problem}")


def load_layouts(folder: str | Path | None = None) -> dict[str, Layout]:
    """Every layout of the reported files in ``folder`` (default: results/reported), validated,
    in list order. Raises :class:`LayoutError` (and ReportedSchemaError for the tables)."""
    sources = load_reported(folder)
    tables = {t.id: t for s in sources for t in s.tables}
    found: list[tuple[float, Layout]] = []
    files: dict[str, str] = {}
    for source in sources:
        for position, raw in enumerate(source.layouts):
            order, layout = _layout(raw, _Entry(source.path.name, f"layouts[{position}]"), tables)
            if layout.name in files:
                raise LayoutError(f"{source.path.name}: layout {layout.name}: name already used by "
                                  f"{files[layout.name]}")
            files[layout.name] = source.path.name
            found.append((order, layout))
    found.sort(key=lambda item: item[0])  # stable: ties keep file and position order
    return {layout.name: layout for _, layout in found}


def _layout(raw: Any, entry: _Entry, tables: dict[str, Table]) -> tuple[float, Layout]:
    if not isinstance(raw, dict):
        raise entry.fail("", f"expected a mapping of layout fields, got {type(raw).__name__}")
    if isinstance(raw.get("name"), str) and _ID.match(raw["name"]):
        entry = _Entry(entry.file, f"layout {raw['name']}")
    _keys(raw, entry, "", _LAYOUT_KEYS, ("name", "tables", "description"))
    table_ids = tuple(_ident(t, entry, f"tables[{i}]") for i, t in enumerate(_list(raw["tables"], entry, "tables")))
    for table_id in table_ids:
        if table_id not in tables:
            raise entry.fail("tables", f"no reported table {table_id!r} in the folder")
    protocol = raw.get("protocol", PROTOCOL)
    if protocol not in PROTOCOLS:
        raise entry.fail("protocol", f"unknown protocol {protocol!r} (allowed: {', '.join(PROTOCOLS)})")
    pretrain = raw.get("pretrain")
    layout = Layout(
        name=_ident(raw["name"], entry, "name"), tables=table_ids,
        description=_text(raw["description"], entry, "description"),
        tolerances=_tolerances(raw.get("tolerances", {}), entry, "tolerances", _TOLERANCE_METRICS),
        column_tolerances=_tolerances(raw.get("column_tolerances", {}), entry, "column_tolerances",
                                      tuple(f"{t}.{c.id}" for t in table_ids for c in tables[t].columns)),
        settings=tuple(_setting(s, entry, f"settings[{i}]") for i, s in enumerate(_list(raw.get("settings", []),
                                                                                          entry, "settings"))),
        pretrain=None if pretrain is None else _ident(pretrain, entry, "pretrain"),
        pretrain_source=_text(raw.get("pretrain_source", ""), entry, "pretrain_source", empty=True),
        tasks={_ident(k, entry, "tasks"): _ident(v, entry, f"tasks.{k}")
               for k, v in _mapping(raw.get("tasks", {}), entry, "tasks").items()},
        rows={_ident(k, entry, "rows"): _row(v, entry, f"rows.{k}")
              for k, v in _mapping(raw.get("rows", {}), entry, "rows").items()},
        readings=tuple(_text(r, entry, f"readings[{i}]") for i, r in enumerate(_list(raw.get("readings", []),
                                                                                      entry, "readings"))),
        protocol=protocol)
    return _order(raw.get("order"), entry), layout


def _keys(raw: dict, entry: _Entry, where: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> None:
    for key in raw:
        if key not in allowed:
            raise entry.fail(f"{where}{key}", f"unknown key (allowed: {', '.join(allowed)})")
    for key in required:
        if key not in raw:
            raise entry.fail(f"{where}{key}", "missing required key")


def _mapping(value: Any, entry: _Entry, key: str) -> dict:
    if not isinstance(value, dict):
        raise entry.fail(key, f"expected a mapping, got {value!r}")
    return value


def _list(value: Any, entry: _Entry, key: str) -> list:
    if not isinstance(value, list):
        raise entry.fail(key, f"expected a list, got {value!r}")
    return value


def _text(value: Any, entry: _Entry, key: str, empty: bool = False) -> str:
    if not isinstance(value, str) or not (empty or value.strip()):
        raise entry.fail(key, f"expected {'text' if empty else 'non-empty text'}, got {value!r}")
    return value.strip()


def _ident(value: Any, entry: _Entry, key: str) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise entry.fail(key, f"{value!r} is not an id (lower-case letters, digits, '-', '_', '.')")
    return value


def _setting(value: Any, entry: _Entry, key: str) -> str:
    text = _text(value, entry, key)
    if "=" not in text:
        raise entry.fail(key, f"expected a --set assignment key=value, got {value!r}")
    return text


def _row(raw: Any, entry: _Entry, key: str) -> RowRun:
    raw = _mapping(raw, entry, key)
    _keys(raw, entry, f"{key}.", _ROW_KEYS)
    method = raw.get("method")
    return RowRun(None if method is None else _ident(method, entry, f"{key}.method"),
                  _text(raw.get("reading", ""), entry, f"{key}.reading", empty=True),
                  _text(raw.get("reported_only", ""), entry, f"{key}.reported_only", empty=True))


def _tolerances(raw: Any, entry: _Entry, key: str, allowed: tuple[str, ...]) -> dict[str, Tolerance]:
    tolerances = {}
    for name, value in _mapping(raw, entry, key).items():
        if name not in allowed:
            raise entry.fail(f"{key}.{name}", f"not one of {', '.join(allowed)}")
        tolerances[name] = _tolerance(value, entry, f"{key}.{name}")
    return tolerances


def _tolerance(raw: Any, entry: _Entry, key: str) -> Tolerance:
    raw = _mapping(raw, entry, key)
    _keys(raw, entry, f"{key}.", _TOLERANCE_KEYS, ("amount",))
    amount, relative = raw["amount"], raw.get("relative", False)
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or not 0 <= amount < math.inf:
        raise entry.fail(f"{key}.amount", f"expected a finite number >= 0, got {amount!r}")
    if not isinstance(relative, bool):
        raise entry.fail(f"{key}.relative", f"expected true or false, got {relative!r}")
    return Tolerance(float(amount), relative)


def _order(value: Any, entry: _Entry) -> float:
    if value is None:
        return math.inf
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise entry.fail("order", f"expected a number, got {value!r}")
    return float(value)


# ----- the registry --------------------------------------------------------------------------
class LayoutRegistry(MutableMapping[str, Layout]):
    """Name -> layout of results/reported, read on first use (importing the package reads no
    YAML, and a broken file stops only the commands that need layouts). Mutable, so a test can
    swap one layout for a variant."""

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = folder
        self._layouts: dict[str, Layout] | None = None

    @property
    def layouts(self) -> dict[str, Layout]:
        if self._layouts is None:
            self._layouts = load_layouts(self.folder)
        return self._layouts

    def __getitem__(self, name: str) -> Layout:
        return self.layouts[name]

    def __setitem__(self, name: str, layout: Layout) -> None:
        self.layouts[name] = layout

    def __delitem__(self, name: str) -> None:
        del self.layouts[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.layouts)

    def __len__(self) -> int:
        return len(self.layouts)


LAYOUTS = LayoutRegistry()


def get_layout(name: str, folder: str | Path | None = None) -> Layout:
    """The layout ``name`` of ``folder`` (default: :data:`LAYOUTS`, results/reported)."""
    layouts = LAYOUTS if folder is None else load_layouts(folder)
    if name not in layouts:
        from ecgbench.core.registry import did_you_mean

        raise LayoutError(f"unknown layout {name!r}.{did_you_mean(name, list(layouts))} "
                          "Run 'ecgbench table --layout list' to see them all.")
    return layouts[name]


def list_layouts(folder: str | Path | None = None) -> str:
    """One line per layout: name and description (and any reported table it misses)."""
    layouts = LAYOUTS if folder is None else load_layouts(folder)
    known = {t.id for s in load_reported(folder) for t in s.tables}
    width = max((len(name) for name in layouts), default=0)
    lines = []
    for layout in layouts.values():
        missing = [t for t in layout.tables if t not in known]
        note = f"  (missing reported table {', '.join(missing)})" if missing else ""
        lines.append(f"{layout.name:<{width}}  {layout.description}{note}")
    return "\n".join(lines)

