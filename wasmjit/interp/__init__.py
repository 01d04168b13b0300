"""The interpreter tier: closure code over register-style frames, with entry/back-edge counts."""

from .machine import enter, install, make_entry, translate

__all__ = ["enter", "install", "make_entry", "translate"]
