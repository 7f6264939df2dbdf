import pytest

from ecgbench.core.registry import METHODS, TASKS, Registry, UnknownNameError, scan_file


def test_method_registry_finds_every_method_file():
    names = METHODS.names()
    for expected in ["random-init", "transform-cnn", "transform-cnn-res1", "transform-cnn-res12",
                     "transform-cnn-res123", "simclr", "byol"]:
        assert expected in names
    assert all(METHODS.entry(n).description for n in names), "every method needs a one-line description"


def test_template_is_skipped():
    assert not any(e.path.name.startswith("_") for e in METHODS.entries.values())


def test_unknown_name_suggests_the_close_one():
    with pytest.raises(UnknownNameError, match="Did you mean 'simclr'"):
        METHODS.entry("simclrr")
    with pytest.raises(UnknownNameError, match="synth-superclass"):
        TASKS.select("synth-superclas")


def test_select_all_and_list():
    assert METHODS.select("all") == [n for n in METHODS.names() if not METHODS.entry(n).alias_of]
    assert TASKS.select("all") == TASKS.names()
    assert METHODS.select("byol, simclr,byol") == ["byol", "simclr"]


def test_scan_finds_classes_and_task_calls_without_importing(tmp_path):
    source = tmp_path / "thing.py"
    source.write_text(
        "import not_a_real_module\n"
        "class A:\n    '''First line.\n\n    more'''\n    name = 'a-method'\n"
        "class NoName:\n    pass\n"
        "T = Task(name='a-task', description='A task.', version=1)\n"
    )
    entries = {e.name: e for e in scan_file(source, "pkg.thing")}
    assert entries["a-method"].description == "First line."
    assert entries["a-method"].attribute == "A"
    assert entries["a-task"].attribute == "T" and entries["a-task"].description == "A task."
    assert len(entries) == 2


def test_duplicate_names_are_refused(tmp_path, monkeypatch):
    package = tmp_path / "dupes"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("class A:\n    name = 'x'\n")
    (package / "b.py").write_text("class B:\n    name = 'x'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(RuntimeError, match="defined twice"):
        Registry("dupes", "method").names()


def test_aliases_are_listed_and_runnable_but_not_part_of_all():
    from ecgbench.core.registry import METHODS

    everything = METHODS.select("all")
    assert "clocs" in METHODS.names() and "clocs" not in everything and "clocs-cmsc" in everything
    assert METHODS.select("clocs") == ["clocs"]
    for name in METHODS.names():
        alias_of = METHODS.entry(name).alias_of
        if alias_of:  # an alias names a registered method and is a subclass of it, no more
            target = METHODS.get(alias_of)
            assert issubclass(METHODS.get(name), target) and METHODS.get(name).Config is target.Config
