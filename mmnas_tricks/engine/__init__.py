"""Hooks (one trick per file), BN calibration, search loops and the
search metrics."""
from .bn_calibration import calibrate_bn  # noqa: F401
from .hooks import *  # noqa: F401,F403
from .metrics import *  # noqa: F401,F403
from .optim import *  # noqa: F401,F403
from .runner import *  # noqa: F401,F403
