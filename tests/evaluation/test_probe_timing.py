"""scripts/probe_timing.py's before/after comparison: medians, and a changed selection is caught."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "probe_timing.py"


def _script():
    spec = importlib.util.spec_from_file_location("probe_timing_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(wall: float, chosen: str = "{'C': 0.1}", values: tuple = (0.9, 0.8)) -> dict:
    row = {"probe": "svc", "chosen": chosen, "candidate_values": list(values),
           "search_wall_s": wall, "search_cpu_s": 2 * wall, "search_load_avg_1m": 1.0}
    return {"probes": [row], "total": {"search_wall_s": wall, "search_cpu_s": 2 * wall}}


def test_medians_per_probe_and_in_total():
    medians = _script()._medians([_run(3.0), _run(1.0), _run(10.0)])
    assert medians["probes"][0]["search_wall_s"] == 3.0 and medians["probes"][0]["search_cpu_s"] == 6.0
    assert medians["total"] == {"search_wall_s": 3.0, "search_cpu_s": 6.0}


def test_a_different_selection_or_validation_score_is_not_the_same():
    same = _script()._same_selections
    runs = {"before": [_run(1.0), _run(2.0)], "after": [_run(0.5), _run(0.7)]}
    assert same(runs)
    for change in ({"chosen": "{'C': 1.0}"}, {"candidate_values": [0.9, 0.8000001]}):
        changed = copy.deepcopy(runs)
        changed["after"][1]["probes"][0].update(change)
        assert not same(changed)
