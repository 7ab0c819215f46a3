"""Hooks (one trick per file), BN calibration and search loops."""
from .bn_calibration import calibrate_bn  # noqa: F401
from .hooks import *  # noqa: F401,F403
from .runner import *  # noqa: F401,F403
