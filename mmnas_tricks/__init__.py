"""mmnas_tricks: neural-architecture search for mmdet / mmseg with the bag of
tricks as mmengine hooks."""
from .utils.checkpoint import register_checkpoint_safe_globals
from .version import __version__

# mmengine 0.10 checkpoints need a few allow-listed classes under
# torch >= 2.6's weights_only=True default (see mmnas_tricks.utils.checkpoint).
# Importing the package (directly, via custom_imports or a 'mmnas_tricks.X'
# type) registers them; weights_only itself is never turned off.
register_checkpoint_safe_globals()

__all__ = ['__version__']
