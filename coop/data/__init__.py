"""Stage 1, data: a data set as one record (images in class folders, its template and classes: Caltech101's,
or a user's own from a JSON file, ``--dataset``), reading images, our split and CoOp's split format, few-shot
sets, Caltech101's official download and its safe extraction, synthetic data for tests.

Imports point down only: ``coop.data`` uses ``coop.utils`` and nothing above it."""
