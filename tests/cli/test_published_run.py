"""``ecgbench run`` on the authors' released encoders (here: their parameter names at the smoke
preset's sizes, random values): evaluated without pretraining, the file's hash in the key."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from published_reference import ecg_jepa_reference, st_mem_reference

from ecgbench.cli import main

SMALL = ["--set", "data.n_patients=90", "--set", "eval.bootstrap=50"]


def run_argv(tmp_path, *sets: str) -> list[str]:
    argv = ["run", "--methods", "st-mem,ecg-jepa", "--tasks", "synth-superclass", "--preset", "smoke",
            "--probes", "lr", "--seeds", "0", "--results-dir", str(tmp_path / "results"), "--no-tracking"]
    for item in sets:
        argv += ["--set", item]
    return argv + SMALL


@pytest.fixture
def files(tmp_path):
    st_mem, jepa = tmp_path / "st_mem_vit.pth", tmp_path / "ecg_jepa.pth"
    torch.save({"epoch": 799, "model": st_mem_reference(32, 1, 128)}, st_mem)
    torch.save({"encoder": ecg_jepa_reference(32, 1, 128), "epoch": 99}, jepa)
    return st_mem, jepa


def test_a_loaded_checkpoint_is_evaluated_without_pretraining_under_its_hash(tmp_path, files, monkeypatch):
    monkeypatch.setenv("ECGBENCH_DATA", str(tmp_path / "data"))
    st_mem, jepa = files
    argv = run_argv(tmp_path, f"st-mem.init_from={st_mem}", f"ecg-jepa.init_from={jepa}", "max_steps=0")
    assert main(argv) == 0
    results = sorted((tmp_path / "results" / "runs").glob("*/synth-superclass@*/*.json"))
    assert len(results) == 2
    for path, file in zip(results, (jepa, st_mem)):
        record = json.loads(path.read_text())
        digest = record["run_config"]["method_config"]["init_sha256"]
        assert record["key"].startswith(f"{record['method']}-init{digest[:12]}-")
        run = json.loads((path.parent.parent / "run.json").read_text())
        assert run["train"]["steps"] == 0 and digest == hashlib.sha256(file.read_bytes()).hexdigest()


@pytest.mark.parametrize("which, damage, message", [
    ("missing", None, "no such checkpoint file"),
    ("damaged", b"PK\x03\x04 not a zip", "not a readable torch checkpoint"),
    ("wrong", None, "an encoder checkpoint of ecg-jepa (W_P.weight), not of st-mem"),
])
def test_bad_checkpoints_are_one_line_before_any_work(tmp_path, files, capsys, monkeypatch, which, damage,
                                                      message):
    monkeypatch.setenv("ECGBENCH_DATA", str(tmp_path / "data"))
    path = {"missing": tmp_path / "nothing.pth", "damaged": tmp_path / "damaged.pth", "wrong": files[1]}[which]
    if damage:
        path.write_bytes(damage)
    assert main(run_argv(tmp_path, f"st-mem.init_from={path}", "max_steps=0")) == 2
    err = capsys.readouterr().err
    assert err.startswith("ecgbench: error: ") and err.count("\n") == 1, err
    assert str(path) in err and message in err
    assert not (tmp_path / "data").exists() and not (tmp_path / "results" / "runs").exists(), \
        "refused before any work"


def test_a_variant_starts_from_the_loaded_base_in_the_authors_layout(tmp_path, files, monkeypatch):
    monkeypatch.setenv("ECGBENCH_DATA", str(tmp_path / "data"))
    argv = run_argv(tmp_path, f"st-mem.init_from={files[0]}", "st-mem.max_steps=0", "st-mem-vqvae.max_steps=2")
    argv[argv.index("st-mem,ecg-jepa")] = "st-mem,st-mem-vqvae"
    assert main(argv) == 0
    runs = {r["run_config"]["method"]: r for r in
            (json.loads(p.read_text()) for p in (tmp_path / "results" / "runs").glob("*/run.json"))}
    variant, base = runs["st-mem-vqvae"], runs["st-mem"]
    assert variant["run_config"]["base_run_id"] == base["run_id"] and "-init" in base["run_id"]
    assert variant["run_config"]["method_config"]["patch_norm"] is True
