"""Stage 6, report: what turns result files into a figure and sentences -- the few-shot figure,
the report's tables and generated analysis, the CLIP RN50 shape and parameter tables, the
architecture diagram. Speed measurement is not here: it is ``coop.measure``, the next stage.

Imports point down only: ``coop.report`` reads results through ``coop.runs`` (and the departures
list from ``coop.methods``); nothing below imports it."""
