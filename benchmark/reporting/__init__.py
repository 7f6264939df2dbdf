"""Reading stored results, never running anything: markdown tables, the leaderboard block of
BENCHMARK.md, the HTML report, the smoke-grid check against the reference, the shortcut audit,
the papers' reported numbers (:mod:`.reported`) and their layouts (:mod:`.layouts`). May import
core, data, models and evaluation; the running layer uses it to write a run's tables.
"""
