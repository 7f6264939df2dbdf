"""Numbers the seed papers and reports print, with their protocols, read from ``results/reported``.

Each YAML file in ``results/reported/`` is one source (a paper or an internal seed report). The
values are transcriptions, never recomputed: a comparison with ecgbench's own results should
read the source's ``protocol`` first, since pretraining data, leads, probes and splits differ.

Schema of one file (``?`` marks an optional key)::

    source: nerula                      # short id, unique over the folder
    citation: "Manimaran et al. ..."    # full citation
    url?: https://...                   # null or absent if there is none
    references?: [..]                   # other works the source relies on (strings)
    protocol:                           # mapping of field -> text; "not stated" where the source is silent
      pretraining_data: ...
      ...
    tables:
      - id: nerula-table3               # unique over the folder
        title: ...
        task: cinc2017-af               # an ecgbench task id, or a list of them
        notes?: ...
        columns:
          - id: svc_acc                 # unique in the table
            probe: svc                  # svc/rf/lr/mlp/knn, or null
            metric: accuracy            # see METRICS; f1_<class> for one class's F1
            higher_is_better: true
            scale?: fraction            # fraction (default for bounded metrics) or percent
            task?: dreamer-arousal      # which of the table's tasks, when it lists several
            notes?: ...
        rows:
          - method: byol                # the ecgbench method it corresponds to; unique in the table
            label: BYOL                 # as printed in the source
            values: {svc_acc: 0.52, rf_acc: null, ...}   # number, null ("-"), or "collapsed"
            approx?: true               # or a list of column ids: values printed with "~"
            ci?: [0.903, 0.918]         # one-column tables; else {column_id: [low, high]}
            notes?: ...
    layouts?:                           # the paper's tables re-laid with ecgbench's numbers: read and
      - name: nerula-table3             # validated by ecgbench.reporting.layouts, kept here as given
        ...

Every declared column must appear in every row's ``values`` (null where not reported), so
a missing number is always a deliberate null, not a typo.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ecgbench.evaluation.probes import PROBES as REGISTERED_PROBES

DEFAULT_FOLDER = Path(__file__).resolve().parents[2] / "results" / "reported"

PROBES = tuple(REGISTERED_PROBES)  # the harness's probes, in table order
METRICS = ("accuracy", "macro_f1", "macro_auroc", "mae", "r2", "dbi", "silhouette", "chi", "hours")
CLASS_F1 = re.compile(r"^f1_[A-Za-z0-9][A-Za-z0-9_-]*$")
SCALES = ("fraction", "percent")
# Metrics whose values lie in [0, 1] as fractions (or [0, 100] as percent).
BOUNDED = ("accuracy", "macro_f1", "macro_auroc")
COLLAPSED = "collapsed"
_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")

_SOURCE_KEYS = {"source", "citation", "url", "references", "protocol", "tables", "layouts"}
_TABLE_KEYS = {"id", "title", "task", "notes", "columns", "rows"}
_COLUMN_KEYS = {"id", "probe", "metric", "higher_is_better", "scale", "task", "notes"}
_ROW_KEYS = {"method", "label", "values", "approx", "ci", "notes"}


class ReportedSchemaError(ValueError):
    """A ``results/reported`` file breaks the schema; the message is one line naming the file
    and the field."""


Value = float | str | None  # a number, None for "-"/not reported, or "collapsed"


@dataclass(frozen=True)
class Column:
    id: str
    probe: str | None
    metric: str
    higher_is_better: bool
    scale: str | None = None  # "fraction"/"percent" for bounded metrics, None otherwise
    task: str | None = None
    notes: str | None = None


@dataclass(frozen=True)
class Row:
    method: str
    label: str
    values: dict[str, Value]
    approx: frozenset[str] = frozenset()  # column ids whose value was printed with "~"
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    notes: str | None = None


@dataclass(frozen=True)
class Table:
    id: str
    title: str
    tasks: tuple[str, ...]
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    source: str
    notes: str | None = None

    @property
    def task(self) -> str:
        """The task, or the tasks joined with "+" when the table covers several."""
        return "+".join(self.tasks)

    def column(self, column_id: str) -> Column:
        for column in self.columns:
            if column.id == column_id:
                return column
        raise KeyError(f"{self.id}: no column {column_id!r} (have {[c.id for c in self.columns]})")

    def row(self, method: str) -> Row:
        for row in self.rows:
            if row.method == method:
                return row
        raise KeyError(f"{self.id}: no row for method {method!r} (have {[r.method for r in self.rows]})")


@dataclass(frozen=True)
class ReportedSource:
    source: str
    citation: str
    url: str | None
    protocol: dict[str, Any]
    tables: tuple[Table, ...]
    path: Path
    references: tuple[str, ...] = ()
    layouts: tuple[Any, ...] = ()  # the ``layouts:`` section as read; ecgbench.reporting.layouts validates it


def load_reported(folder: str | Path | None = None) -> list[ReportedSource]:
    """Every ``*.yaml``/``*.yml`` in ``folder`` (default: the repository's results/reported),
    validated; sorted by file name. Raises :class:`ReportedSchemaError`."""
    folder = DEFAULT_FOLDER if folder is None else Path(folder)
    if not folder.is_dir():
        raise ReportedSchemaError(f"{folder}: reported-results folder not found")
    paths = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    sources = [load_source(p) for p in paths]
    _check_unique(sources)
    return sources


def load_source(path: str | Path) -> ReportedSource:
    """One source file, validated."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(err, "problem", None) or type(err).__name__
        raise ReportedSchemaError(f"{path.name}: not valid YAML{where}: {problem}") from None
    return _parse_source(data, _Ctx(path.name))


def reported_value(table_id: str, method: str, column_id: str, folder: str | Path | None = None) -> Value:
    """The value a table reports for ``method`` (its ecgbench method name or its printed label)
    in ``column_id``: a float, None (not reported), or "collapsed"."""
    table = _find_table(table_id, load_reported(folder))
    table.column(column_id)
    for row in table.rows:
        if row.method == method:
            return row.values[column_id]
    for row in table.rows:
        if row.label == method:
            return row.values[column_id]
    raise KeyError(f"{table_id}: no row for method {method!r} (have {[r.method for r in table.rows]})")


def tables_for_task(task: str, folder: str | Path | None = None) -> list[Table]:
    """Every table (from every source) that reports on ``task``."""
    return [t for s in load_reported(folder) for t in s.tables if task in t.tasks]


def get_table(table_id: str, folder: str | Path | None = None) -> Table:
    return _find_table(table_id, load_reported(folder))


def _find_table(table_id: str, sources: list[ReportedSource]) -> Table:
    for source in sources:
        for table in source.tables:
            if table.id == table_id:
                return table
    known = sorted(t.id for s in sources for t in s.tables)
    raise KeyError(f"no reported table {table_id!r} (have {known})")


# --- validation ---------------------------------------------------------------------------


class _Ctx:
    """File name plus a dotted field path, for one-line errors."""

    def __init__(self, file: str, where: str = "") -> None:
        self.file, self.where = file, where

    def at(self, key: Any) -> _Ctx:
        if isinstance(key, int):
            return _Ctx(self.file, f"{self.where}[{key}]")
        return _Ctx(self.file, f"{self.where}.{key}" if self.where else str(key))

    def fail(self, problem: str) -> ReportedSchemaError:
        where = f": {self.where}" if self.where else ""
        return ReportedSchemaError(f"{self.file}{where}: {problem}")


def _named(ctx: _Ctx, data: Any, key: str) -> _Ctx:
    """``tables[3]`` -> ``tables[nerula-table3]`` once the item's id is known."""
    if isinstance(data, dict) and isinstance(data.get(key), str) and _ID.match(data[key]):
        return _Ctx(ctx.file, f"{ctx.where.rsplit('[', 1)[0]}[{data[key]}]")
    return ctx


def _mapping(value: Any, ctx: _Ctx, allowed: set[str], required: tuple[str, ...]) -> dict:
    if not isinstance(value, dict):
        raise ctx.fail(f"expected a mapping, got {type(value).__name__}")
    for key in value:
        if key not in allowed:
            raise ctx.at(key).fail(f"unknown field (allowed: {', '.join(sorted(allowed))})")
    for key in required:
        if key not in value:
            raise ctx.at(key).fail("missing required field")
    return value


def _text(value: Any, ctx: _Ctx, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ctx.fail(f"expected non-empty text, got {value!r}")
    return value.strip()


def _ident(value: Any, ctx: _Ctx) -> str:
    text = _text(value, ctx)
    if not _ID.match(text):
        raise ctx.fail(f"{text!r} is not an id (lower-case letters, digits, '-', '_', '.')")
    return text


def _number(value: Any, ctx: _Ctx) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ctx.fail(f"expected a finite number, got {value!r}")
    return float(value)


def _list(value: Any, ctx: _Ctx, nonempty: bool = True) -> list:
    if not isinstance(value, list):
        raise ctx.fail(f"expected a list, got {type(value).__name__}")
    if nonempty and not value:
        raise ctx.fail("expected a non-empty list")
    return value


def _parse_source(data: Any, ctx: _Ctx) -> ReportedSource:
    if data is None:
        raise ctx.fail("file is empty")
    data = _mapping(data, ctx, _SOURCE_KEYS, ("source", "citation", "protocol", "tables"))
    source = _ident(data["source"], ctx.at("source"))
    citation = _text(data["citation"], ctx.at("citation"))
    url = _text(data.get("url"), ctx.at("url"), optional=True)
    raw_refs = _list(data.get("references", []), ctx.at("references"), nonempty=False)
    references = tuple(_text(r, ctx.at("references").at(i)) for i, r in enumerate(raw_refs))
    protocol = data["protocol"]
    if not isinstance(protocol, dict) or not protocol:
        raise ctx.at("protocol").fail("expected a non-empty mapping of field -> text")
    for key, value in protocol.items():
        _protocol_value(value, ctx.at("protocol").at(key))
    raw_tables = _list(data["tables"], ctx.at("tables"))
    tables = tuple(_parse_table(t, ctx.at("tables").at(i), source) for i, t in enumerate(raw_tables))
    _unique([t.id for t in tables], ctx.at("tables"), "table id")
    layouts = tuple(_list(data.get("layouts", []), ctx.at("layouts"), nonempty=False))
    return ReportedSource(source, citation, url, dict(protocol), tables, Path(ctx.file), references, layouts)


def _protocol_value(value: Any, ctx: _Ctx) -> None:
    if isinstance(value, str):
        _text(value, ctx)
    elif isinstance(value, list):
        for i, item in enumerate(_list(value, ctx)):
            _text(item, ctx.at(i))
    elif isinstance(value, dict):
        for key, item in value.items():
            _protocol_value(item, ctx.at(key))
    else:
        raise ctx.fail(f"expected text (or a list/mapping of text), got {value!r}")


def _parse_table(data: Any, ctx: _Ctx, source: str) -> Table:
    ctx = _named(ctx, data, "id")
    data = _mapping(data, ctx, _TABLE_KEYS, ("id", "title", "task", "columns", "rows"))
    table_id = _ident(data["id"], ctx.at("id"))
    title = _text(data["title"], ctx.at("title"))
    raw_task = data["task"]
    if isinstance(raw_task, list):
        tasks = tuple(_ident(t, ctx.at("task").at(i)) for i, t in enumerate(_list(raw_task, ctx.at("task"))))
    else:
        tasks = (_ident(raw_task, ctx.at("task")),)
    _unique(list(tasks), ctx.at("task"), "task")
    raw_columns = _list(data["columns"], ctx.at("columns"))
    columns = tuple(_parse_column(c, ctx.at("columns").at(i), tasks) for i, c in enumerate(raw_columns))
    column_ids = [c.id for c in columns]
    _unique(column_ids, ctx.at("columns"), "column id")
    raw_rows = _list(data["rows"], ctx.at("rows"))
    rows = tuple(_parse_row(r, ctx.at("rows").at(i), columns) for i, r in enumerate(raw_rows))
    _unique([r.method for r in rows], ctx.at("rows"), "row method")
    notes = _text(data.get("notes"), ctx.at("notes"), optional=True)
    return Table(table_id, title, tasks, columns, rows, source, notes)


def _parse_column(data: Any, ctx: _Ctx, tasks: tuple[str, ...]) -> Column:
    ctx = _named(ctx, data, "id")
    data = _mapping(data, ctx, _COLUMN_KEYS, ("id", "probe", "metric", "higher_is_better"))
    column_id = _ident(data["id"], ctx.at("id"))
    probe = data["probe"]
    if probe is not None and probe not in PROBES:
        raise ctx.at("probe").fail(f"unknown probe {probe!r} (allowed: {', '.join(PROBES)}, or null)")
    metric = data["metric"]
    if not isinstance(metric, str) or not (metric in METRICS or CLASS_F1.match(metric)):
        raise ctx.at("metric").fail(f"unknown metric {metric!r} (allowed: {', '.join(METRICS)}, f1_<class>)")
    higher = data["higher_is_better"]
    if not isinstance(higher, bool):
        raise ctx.at("higher_is_better").fail(f"expected true or false, got {higher!r}")
    scale = data.get("scale")
    bounded = metric in BOUNDED or metric.startswith("f1_")
    if scale is not None and scale not in SCALES:
        raise ctx.at("scale").fail(f"unknown scale {scale!r} (allowed: {', '.join(SCALES)})")
    if scale is not None and not bounded:
        raise ctx.at("scale").fail(f"scale applies only to bounded metrics, not {metric!r}")
    if bounded and scale is None:
        scale = "fraction"
    task = data.get("task")
    if task is not None and task not in tasks:
        raise ctx.at("task").fail(f"{task!r} is not one of the table's tasks {list(tasks)}")
    notes = _text(data.get("notes"), ctx.at("notes"), optional=True)
    return Column(column_id, probe, metric, higher, scale, task, notes)


def _parse_row(data: Any, ctx: _Ctx, columns: tuple[Column, ...]) -> Row:
    ctx = _named(ctx, data, "method")
    data = _mapping(data, ctx, _ROW_KEYS, ("method", "label", "values"))
    method = _ident(data["method"], ctx.at("method"))
    label = _text(data["label"], ctx.at("label"))
    raw = data["values"]
    if not isinstance(raw, dict):
        raise ctx.at("values").fail(f"expected a mapping column id -> value, got {type(raw).__name__}")
    by_id = {c.id: c for c in columns}
    values: dict[str, Value] = {}
    for key, value in raw.items():
        vctx = ctx.at("values").at(key)
        if key not in by_id:
            raise vctx.fail(f"value for undeclared column (declared: {', '.join(by_id)})")
        values[key] = _value(value, vctx, by_id[key])
    for key in by_id:
        if key not in values:
            raise ctx.at("values").at(key).fail("missing (write null where the source does not report it)")
    approx_raw = data.get("approx", False)
    if approx_raw is True:
        approx = frozenset(by_id)
    elif approx_raw is False:
        approx = frozenset()
    elif isinstance(approx_raw, list):
        for i, key in enumerate(approx_raw):
            if key not in by_id:
                raise ctx.at("approx").at(i).fail(f"undeclared column {key!r}")
        approx = frozenset(approx_raw)
    else:
        raise ctx.at("approx").fail(f"expected true, false or a list of column ids, got {approx_raw!r}")
    ci = _ci(data.get("ci"), ctx.at("ci"), columns, values)
    notes = _text(data.get("notes"), ctx.at("notes"), optional=True)
    return Row(method, label, values, approx, ci, notes)


def _value(value: Any, ctx: _Ctx, column: Column) -> Value:
    if value is None:
        return None
    if value == COLLAPSED:
        return COLLAPSED
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ctx.fail(f"expected a number, null or {COLLAPSED!r}, got {value!r}")
    number = _number(value, ctx)
    if column.scale == "fraction" and not 0.0 <= number <= 1.0:
        raise ctx.fail(f"{number} is outside [0, 1] for a fraction-scale {column.metric} column")
    if column.scale == "percent" and not 0.0 <= number <= 100.0:
        raise ctx.fail(f"{number} is outside [0, 100] for a percent-scale {column.metric} column")
    return number


def _ci(
    raw: Any, ctx: _Ctx, columns: tuple[Column, ...], values: dict[str, Value]
) -> dict[str, tuple[float, float]]:
    if raw is None:
        return {}
    if isinstance(raw, list):
        if len(columns) != 1:
            raise ctx.fail(
                "a bare [low, high] is only allowed in one-column tables; use {column_id: [low, high]}"
            )
        raw = {columns[0].id: raw}
    if not isinstance(raw, dict):
        raise ctx.fail(f"expected [low, high] or {{column_id: [low, high]}}, got {raw!r}")
    out = {}
    for key, pair in raw.items():
        pctx = ctx.at(key)
        if key not in values:
            raise pctx.fail("interval for undeclared column")
        if not isinstance(pair, list) or len(pair) != 2:
            raise pctx.fail(f"expected [low, high], got {pair!r}")
        low, high = _number(pair[0], pctx), _number(pair[1], pctx)
        point = values[key]
        if not low <= high or (isinstance(point, float) and not low <= point <= high):
            raise pctx.fail(f"interval [{low}, {high}] is not ordered around the value {point!r}")
        out[key] = (low, high)
    return out


def _unique(items: list[str], ctx: _Ctx, what: str) -> None:
    seen = set()
    for item in items:
        if item in seen:
            raise ctx.fail(f"duplicate {what} {item!r}")
        seen.add(item)


def _check_unique(sources: list[ReportedSource]) -> None:
    seen_sources: dict[str, Path] = {}
    seen_tables: dict[str, Path] = {}
    for s in sources:
        if s.source in seen_sources:
            first = seen_sources[s.source].name
            raise ReportedSchemaError(f"{s.path.name}: source: {s.source!r} already used by {first}")
        seen_sources[s.source] = s.path
        for t in s.tables:
            if t.id in seen_tables:
                raise ReportedSchemaError(
                    f"{s.path.name}: tables[{t.id}]: table id already used by {seen_tables[t.id].name}"
                )
            seen_tables[t.id] = s.path
