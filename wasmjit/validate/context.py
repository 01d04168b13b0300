"""The validation context C (spec 3.1.6): a module's index spaces, with checked lookups.

Imports: structure, errors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import ValidationError
from ..structure import FuncType, GlobalType, MemoryType, TableType

ErrorFn = Callable[[str], ValidationError]


@dataclass
class Context:
    types: list[FuncType] = field(default_factory=list)
    funcs: list[FuncType] = field(default_factory=list)
    tables: list[TableType] = field(default_factory=list)
    mems: list[MemoryType] = field(default_factory=list)
    globals: list[GlobalType] = field(default_factory=list)
    elems: list[str] = field(default_factory=list)  # element segment reference types
    data_count: int = 0
    refs: set[int] = field(default_factory=set)  # function indices that ref.func may name

    def type(self, index: int, error: ErrorFn) -> FuncType:
        if index >= len(self.types):
            raise error(f"unknown type {index}")
        return self.types[index]

    def func(self, index: int, error: ErrorFn) -> FuncType:
        if index >= len(self.funcs):
            raise error(f"unknown function {index}")
        return self.funcs[index]

    def table(self, index: int, error: ErrorFn) -> TableType:
        if index >= len(self.tables):
            raise error(f"unknown table {index}")
        return self.tables[index]

    def memory(self, index: int, error: ErrorFn) -> MemoryType:
        if index >= len(self.mems):
            raise error(f"unknown memory {index}")
        return self.mems[index]

    def global_(self, index: int, error: ErrorFn) -> GlobalType:
        if index >= len(self.globals):
            raise error(f"unknown global {index}")
        return self.globals[index]

    def elem(self, index: int, error: ErrorFn) -> str:
        if index >= len(self.elems):
            raise error(f"unknown elem segment {index}")
        return self.elems[index]

    def data(self, index: int, error: ErrorFn) -> None:
        if index >= self.data_count:
            raise error(f"unknown data segment {index}")
