"""Stage 2, model: OpenAI CLIP loaded by name or path (or with random weights), its precision,
the text encoder over prompt embeddings (plain and the exact fast path), CoOp's prompt learner
and the transformer-block modifications.

Imports point down only: ``coop.model`` uses ``coop.data`` (class names) and ``coop.utils``."""
