"""Hooks (one trick per file) and search loops; filled by later issues."""
