"""The public contracts for code outside the harness: a task file, a method file, a script.

``from ecgbench.api import Task, InputSpec, Recordings, NotApplicable`` is the stable way to
write a task or a method; the definitions live in :mod:`ecgbench.core.contracts`, which every
layer below builds on. Light on purpose: no torch, scikit-learn or mlflow at import time.
"""

from ecgbench.core.contracts import (
    HIGHER_IS_BETTER,
    SPLITS,
    STANDARD_LEADS,
    InputSpec,
    NotApplicable,
    Recordings,
    Task,
    TaskKind,
)

__all__ = ["HIGHER_IS_BETTER", "SPLITS", "STANDARD_LEADS", "InputSpec", "NotApplicable", "Recordings", "Task",
           "TaskKind"]
