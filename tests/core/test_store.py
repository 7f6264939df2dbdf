
import numpy as np
import pytest

from ecgbench.core.store import RESULT_FIELDS, ResultStore, atomic_write, read_json, write_json, write_npy


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    path = tmp_path / "r.json"
    write_json(path, {"a": 1})

    def broken(tmp):
        tmp.write_text('{"a": ')
        raise KeyboardInterrupt  # killed half-way through the write

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, broken)
    assert read_json(path) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"], "no temp file left behind"


def test_npy_round_trip_keeps_name(tmp_path):
    path = tmp_path / "e" / "x.npy"
    write_npy(path, np.arange(6, dtype=np.float32).reshape(2, 3))
    assert np.load(path).shape == (2, 3)


def test_corrupt_json_names_the_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{nope")
    with pytest.raises(ValueError, match="bad.json"):
        read_json(path)


def test_results_iterates_result_files_only(tmp_path):
    store = ResultStore(tmp_path)
    run = {"run_id": "m-1", "run_config": {}, "train": {}}
    result = {**dict.fromkeys(RESULT_FIELDS, "x"), "metrics": {}}
    write_json(store.run_record("m-1"), run)
    write_json(store.result_path("m-1", "t@v1", "frozen-probe-lr-x"), result)
    assert list(store.results()) == [result]
    assert list(store.runs()) == [run]
    assert store.default_tracking_uri.startswith("sqlite:///")
