"""Stage 8, pipeline: the whole sweep (zero-shot, CoOp at every shots x seed), resumable.
It is the top of the stack: it may import every stage, and no stage imports it."""
