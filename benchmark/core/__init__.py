"""The bottom layer: what every other part of ecgbench lives with, and nothing else.

The contracts (:mod:`.contracts`: Recordings, Task, InputSpec, NotApplicable), settings, keys and
seeds (:mod:`.config`), the registries of methods and tasks found by scanning their folders
(:mod:`.registry`), atomic files and the JSON result store (:mod:`.store`) and the machine's
usable cores (:mod:`.machine`). Imports nothing of ecgbench above it, and no torch, scikit-learn
or mlflow at import time, so the CLI answers at once.
"""
