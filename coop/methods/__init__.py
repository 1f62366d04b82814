"""Stage 5, methods: zero-shot CLIP, CoOp's training (its settings and the learned context on
disk), and the one list of where our recipe departs from CoOp's. One module per method.

Imports point down only: ``coop.methods`` uses ``coop.runs`` and the stages below."""
