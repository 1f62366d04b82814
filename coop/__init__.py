"""coop-caltech101: zero-shot CLIP and CoOp prompt learning on Caltech101.

Public surface:
    load_clip, random_clip   -- OpenAI CLIP by name, checkpoint path, or ``random:ARCH``
    CoOp, BLOCK_MODS         -- the prompt learner over a frozen CLIP, and its block modifications
    set_seed                 -- the seed recipe every run applies
    UserError                -- problems a user can fix; scripts print them without a traceback
"""
import warnings

# OpenAI's clip imports pkg_resources (hence setuptools<81), whose deprecation warning would open the
# output of every script; it says nothing a user of this package can act on
warnings.filterwarnings("ignore", message="pkg_resources is deprecated as an API", category=UserWarning)

from .model.block_mods import BLOCK_MODS  # noqa: E402
from .model.clip_loader import load_clip, random_clip  # noqa: E402
from .utils.errors import UserError  # noqa: E402
from .model.prompt_learner import CoOp  # noqa: E402
from .utils.seed import set_seed  # noqa: E402

__version__ = "0.1.0"
__all__ = ["BLOCK_MODS", "CoOp", "UserError", "load_clip", "random_clip", "set_seed", "__version__"]
