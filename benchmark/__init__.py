"""ecgbench: a benchmark harness for self-supervised ECG representation learning.

Importing this package is cheap on purpose: torch, scikit-learn and mlflow are imported only
by the modules that need them, so ``ecgbench --help`` and ``ecgbench list`` answer at once.
"""

__version__ = "0.1.0"
