"""Validation: ``validate_module(Module) -> ValidatedModule`` with per-function side tables."""

from .func import FuncInfo, Target
from .module import ValidatedModule, validate_module

__all__ = ["FuncInfo", "Target", "ValidatedModule", "validate_module"]
