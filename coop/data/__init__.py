"""Stage 1, data: Caltech101 on disk (class folders, reading images), our split and CoOp's split
format, few-shot sets, the official download and its safe extraction, synthetic data for tests.

Imports point down only: ``coop.data`` uses ``coop.utils`` and nothing above it."""
