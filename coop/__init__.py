"""coop-caltech101: zero-shot CLIP and CoOp prompt learning on Caltech101.

Public surface:
    load_clip, random_clip   -- OpenAI CLIP by name, checkpoint path, or ``random:ARCH``
    CoOp, BLOCK_MODS         -- the prompt learner over a frozen CLIP, and its block modifications
    set_seed                 -- the seed recipe every run applies
    UserError                -- problems a user can fix; scripts print them without a traceback
"""
from .model.block_mods import BLOCK_MODS
from .model.clip_loader import load_clip, random_clip
from .utils.errors import UserError
from .model.prompt_learner import CoOp
from .utils.seed import set_seed

__version__ = "0.1.0"
__all__ = ["BLOCK_MODS", "CoOp", "UserError", "load_clip", "random_clip", "set_seed", "__version__"]
