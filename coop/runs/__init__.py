"""Stage 4, runs: what every run stands on -- the experiment (model + data + split + cached
features, loaded once), a result's provenance and run id, result records on disk, the checks made
before any work, and the command-line options the scripts share.

Imports point down only: ``coop.runs`` uses ``coop.features``, ``coop.model``, ``coop.data``,
``coop.utils``; it never imports a method."""
