"""ecgbench: a benchmark harness for self-supervised ECG representation learning.

Importing this package is cheap on purpose: torch, scikit-learn and mlflow are imported only
by the modules that need them, so ``ecgbench --help`` and ``ecgbench list`` answer at once.
The layers and what each may import are in the README's "Layout" section.
"""

__version__ = "0.1.0"

from ecgbench import _moved  # noqa: E402 - after __version__, which lower layers read

_moved.install()  # the flat layout's module names, for one release


def __getattr__(name: str):
    """The Python API (``ecgbench.evaluate``, ``ecgbench.load_results``), imported on first use:
    the package root is its public face, the code lives in :mod:`ecgbench.tools.python_api`."""
    if name in ("evaluate", "load_results"):
        from ecgbench.tools import python_api

        return getattr(python_api, name)
    raise AttributeError(f"module 'ecgbench' has no attribute {name!r}")
