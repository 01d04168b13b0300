"""The decoded form of a module (spec chapter 2, "Structure"): plain dataclasses, no behaviour.

The decoder produces these, the validator checks them, the runtime instantiates them.
Value types are the strings of :mod:`wasmjit.opcodes` (``"i32"``, ``"funcref"``, ...).
An instruction is a tuple ``(op, immediate, offset)``: the :class:`~wasmjit.opcodes.Op`, its
decoded immediate (see ``Code``) and its byte offset in the module. Imports: opcodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .opcodes import Op

Instr = tuple[Op, Any, int]
"""(op, immediate, byte offset). Immediates by kind: block -> blocktype (None, a value type
string, or a type index int); label/func/local/global/table/data/elem -> int; br_table ->
(tuple of labels, default); call_indirect -> (type index, table index); memarg -> (align,
offset); i32/i64 -> unsigned int; f32 -> bit pattern int; f64 -> float; select_t -> tuple of
types; reftype -> type string; data_mem/elem_table/table_table -> (int, int); mem/mem_mem ->
None; v128 -> 16 bytes; shuffle -> 16 ints; lane -> int; memarg_lane -> (align, offset, lane)."""


@dataclass(frozen=True, slots=True)
class FuncType:
    """A function signature."""

    params: tuple[str, ...]
    results: tuple[str, ...]

    def __str__(self) -> str:
        return f"[{' '.join(self.params)}] -> [{' '.join(self.results)}]"


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits of a memory (pages) or table (elements)."""

    min: int
    max: int | None = None


@dataclass(frozen=True, slots=True)
class TableType:
    elem: str
    limits: Limits


@dataclass(frozen=True, slots=True)
class MemoryType:
    limits: Limits


@dataclass(frozen=True, slots=True)
class GlobalType:
    valtype: str
    mutable: bool


ExternType = FuncType | TableType | MemoryType | GlobalType

# External kinds, as in import/export descriptors.
FUNC, TABLE, MEMORY, GLOBAL = "func", "table", "memory", "global"


@dataclass(slots=True)
class Import:
    module: str
    name: str
    kind: str  # FUNC | TABLE | MEMORY | GLOBAL
    desc: Any  # type index (func) or TableType / MemoryType / GlobalType


@dataclass(slots=True)
class Export:
    name: str
    kind: str
    index: int


@dataclass(slots=True)
class Code:
    """A function body: local declarations and the decoded instruction list (ending in `end`)."""

    locals: list[tuple[int, str]]  # (count, type) runs as in the binary
    body: list[Instr]
    offset: int  # byte offset of the body (after its size field): backtraces count from here
    num_locals: int = 0  # total declared locals (excluding parameters)


@dataclass(slots=True)
class Func:
    type_index: int
    code: Code


@dataclass(slots=True)
class Global:
    type: GlobalType
    init: list[Instr]  # constant expression, ending in `end`


ACTIVE, PASSIVE, DECLARATIVE = "active", "passive", "declarative"


@dataclass(slots=True)
class Elem:
    type: str  # funcref | externref
    init: list[list[Instr]]  # one constant expression per element
    mode: str  # ACTIVE | PASSIVE | DECLARATIVE
    table: int = 0
    offset: list[Instr] | None = None


@dataclass(slots=True)
class Data:
    init: bytes
    mode: str  # ACTIVE | PASSIVE
    memory: int = 0
    offset: list[Instr] | None = None


@dataclass(slots=True)
class Names:
    """The custom `name` section: module name, function names, local names (all optional)."""

    module: str | None = None
    funcs: dict[int, str] = field(default_factory=dict)
    locals: dict[int, dict[int, str]] = field(default_factory=dict)


@dataclass(slots=True)
class Module:
    """A decoded module. Function indices count imported functions first (spec 2.5.1)."""

    types: list[FuncType] = field(default_factory=list)
    imports: list[Import] = field(default_factory=list)
    funcs: list[Func] = field(default_factory=list)
    tables: list[TableType] = field(default_factory=list)
    mems: list[MemoryType] = field(default_factory=list)
    globals: list[Global] = field(default_factory=list)
    exports: list[Export] = field(default_factory=list)
    start: int | None = None
    elems: list[Elem] = field(default_factory=list)
    datas: list[Data] = field(default_factory=list)
    data_count: int | None = None
    customs: list[tuple[str, bytes]] = field(default_factory=list)
    names: Names = field(default_factory=Names)
    uses_simd: bool = False  # a v128 type or 0xFD instruction appears somewhere

    # --- index spaces (imports first) ---
    def imported(self, kind: str) -> list[Import]:
        """The imports of one kind, in order."""
        return [imp for imp in self.imports if imp.kind == kind]

    def func_types(self) -> list[FuncType]:
        """The type of every function in the function index space."""
        return [self.types[imp.desc] for imp in self.imported(FUNC)] + [
            self.types[f.type_index] for f in self.funcs
        ]

    def table_types(self) -> list[TableType]:
        return [imp.desc for imp in self.imported(TABLE)] + list(self.tables)

    def memory_types(self) -> list[MemoryType]:
        return [imp.desc for imp in self.imported(MEMORY)] + list(self.mems)

    def memory_max_bytes(self) -> int:
        """The most bytes memory 0 can ever hold, as declared (4 GiB without a maximum)."""
        mems = self.memory_types()
        if not mems:
            return 0
        pages = mems[0].limits.max
        return (1 << 32) if pages is None else pages * 65536

    def global_types(self) -> list[GlobalType]:
        return [imp.desc for imp in self.imported(GLOBAL)] + [g.type for g in self.globals]
