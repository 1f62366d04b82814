"""Stage 3, features: how an image becomes a feature -- CLIP's test view and CoOp's training
crops, the encoder's input path (DataLoader, padded batches, precision), and the self-verifying
feature cache on disk. The model is frozen, so every feature is computed once.

Imports point down only: ``coop.features`` uses ``coop.model``, ``coop.data`` and ``coop.utils``."""
