"""Methods and tasks from outside the package: include paths, entry points, content hashes."""

from __future__ import annotations

import os

import pytest

from ecgbench.core import registry
from ecgbench.core.config import RunConfig
from ecgbench.core.registry import METHODS, TASKS, RegistryError, include

METHOD = '''"""A method outside the package."""
class Outside:
    """Outside: a method from an include path."""
    name = "outside-method"
'''
TASK = '''from ecgbench.core.contracts import Task
OUTSIDE = Task(name="outside-task", version=2, dataset="synthetic", kind="binary", labels=None,
               main_metric="macro_auroc", description="A task from an include path.")
'''


pytestmark = pytest.mark.usefixtures("fresh_registries")  # tests/conftest.py


def test_an_include_path_adds_methods_and_tasks_with_their_origin_and_hash(tmp_path):
    (tmp_path / "outside.py").write_text(METHOD)
    (tmp_path / "outside_task.py").write_text(TASK)
    (tmp_path / "_helper.py").write_text("this is skipped, like _template.py")
    include([tmp_path])
    method, task = METHODS.entry("outside-method"), TASKS.entry("outside-task")
    assert method.origin == "path" and method.path == tmp_path / "outside.py" and method.digest
    assert method.description == "Outside: a method from an include path."
    assert "outside-task" not in METHODS.entries and "outside-method" not in TASKS.entries
    assert "simclr" in METHODS.entries and METHODS.entry("simclr").digest is None
    assert METHODS.get("outside-method").__name__ == "Outside"
    loaded = TASKS.get("outside-task")
    assert loaded.key == f"outside-task#{task.digest}@v2" and loaded.source_hash == task.digest


def test_the_environment_variable_adds_folders_too(tmp_path, monkeypatch):
    (tmp_path / "outside.py").write_text(METHOD)
    monkeypatch.setenv(registry.INCLUDE_ENV, f"{tmp_path}{os.pathsep}")
    assert "outside-method" in METHODS.names()
    monkeypatch.setenv(registry.INCLUDE_ENV, f"{tmp_path}{os.pathsep}{tmp_path / 'missing'}")
    METHODS.forget()
    with pytest.raises(RegistryError, match=f"ECGBENCH_INCLUDE_PATH: {tmp_path / 'missing'} is not a folder"):
        METHODS.names()


def test_an_edited_file_gets_a_new_hash_and_so_a_new_run_id(tmp_path):
    (tmp_path / "outside.py").write_text(METHOD)
    include([tmp_path])
    before = METHODS.entry("outside-method").digest
    (tmp_path / "outside.py").write_text(METHOD + "# tuned\n")
    METHODS.forget()
    after = METHODS.entry("outside-method").digest
    assert before != after

    def run_id(digest):
        return RunConfig("outside-method", 1, {}, "smoke", "synthetic@4:train", 0, method_source=digest).run_id

    assert run_id(before) != run_id(after)
    assert RunConfig("simclr", 1, {}, "smoke", "d", 0).to_dict().keys() == {
        "method", "method_version", "method_config", "preset", "pretrain_data", "seed"}, "built-in ids unchanged"


@pytest.mark.parametrize("source, message", [
    ("class Broken(:\n    name = 'x'\n", "broken.py:1: syntax error"),
    ("class NoName:\n    pass\n", "broken.py: defines no method"),
    ("class Clash:\n    name = 'simclr'\n", "clashes with the built-in method in simclr.py"),
])
def test_a_bad_external_file_is_one_line_naming_it(tmp_path, source, message):
    (tmp_path / "broken.py").write_text(source)
    include([tmp_path])
    with pytest.raises(RegistryError, match=message) as error:
        METHODS.names()
    assert "\n" not in str(error.value) and str(tmp_path / "broken.py") in str(error.value)


def test_a_missing_folder_and_a_failing_import_are_one_line(tmp_path):
    with pytest.raises(RegistryError, match="not a folder"):
        include([tmp_path / "nowhere"])
    (tmp_path / "outside.py").write_text("import not_a_module_anywhere\n" + METHOD)
    include([tmp_path])
    with pytest.raises(RegistryError, match=r"outside.py: import failed \(ModuleNotFoundError"):
        METHODS.get("outside-method")


def test_an_entry_point_of_an_installed_distribution_registers_its_method(tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "plugcore").mkdir(parents=True)
    (site / "plugcore" / "__init__.py").write_text("")
    (site / "plugcore" / "methods.py").write_text(METHOD.replace("outside-method", "plugged-method"))
    info = site / "plugcore-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: plugcore\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[ecgbench.methods]\nplugged = plugcore.methods:Outside\n")
    monkeypatch.syspath_prepend(str(site))
    entry = METHODS.entry("plugged-method")
    assert entry.origin == "entry point plugcore" and entry.digest and entry.module == "plugcore.methods"
    assert METHODS.get("plugged-method").name == "plugged-method"
