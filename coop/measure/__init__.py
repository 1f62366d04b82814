"""Stage 7, measure: how fast and how big, measured rather than computed from records -- the CoOp
training step naive against ours (``scripts/bench.py``), CoCoOp's step paths, and a finished sweep's
time per stage beside check_env's projection (``scripts/sweep_timing.py``). Nothing here decides a
run's numbers: changing it never makes a result stale (:func:`coop.runs.provenance.computing_modules`).

Imports point down only: ``coop.measure`` times the model, features and methods below it, and
redraws the figure and report through ``coop.report`` to time them; only ``coop.pipeline`` (the
machine check, the base-to-new projection) imports it."""
