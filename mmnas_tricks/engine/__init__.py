"""Hooks (one trick per file) and search loops."""
from .hooks import *  # noqa: F401,F403
