"""Native code in relocatable form: what compiling a function produces, what a module keeps for
its later instantiations and serializes, and what installing code into a store patches.

A :class:`FunctionCode` is one function's machine code (code, then its data area), assembled at
offset 0 and position-independent (jumps, rip-relative constants and jump tables are relative;
calls go through registers), except for its :class:`Relocation` s: the immediates that hold a
store's addresses and numbers (see ``codegen.TARGETS``), each of a fixed width, so any value fits.
Installing it (``native.compile_function``) copies it to a 16-byte aligned address with every
relocation patched by :func:`link`. Compiled code does not depend on the store otherwise, so a
module keeps it per :data:`CodeKey` (:func:`module_cache`) and every instance, in every store,
reuses it. A leaf module: stdlib only (``Module.deserialize`` on the interpreter tier imports it
without the assembler). Imports: validate (types only).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..validate import ValidatedModule

# A relocation's symbolic target, as recorded by Masm.mov_reloc (wasmjit.jit.x64.Target).
Target = tuple[Any, ...]

# What generated code depends on besides the module: (Config.consume_fuel,
# Config.epoch_interruption, codegen.INJECTED_FAULT).
CodeKey = tuple[bool, bool, str | None]


class Relocation(NamedTuple):
    """``width`` bytes at ``offset`` in the code hold the little-endian value of ``target``."""

    offset: int
    width: int
    target: Target


@dataclass(frozen=True)
class FunctionCode:
    """One function's native code, relocatable. Offsets count from the start of ``code``."""

    code: bytes  # machine code, NOP padding, then the data area (constants, jump tables)
    entry: int  # where the function starts (its prologue)
    relocations: tuple[Relocation, ...]
    trap_sites: tuple[tuple[int, int], ...]  # (trap stub, wasm offset of the trapping instruction)
    call_sites: tuple[tuple[int, int], ...]  # (return address of a call, wasm offset of the call)
    wasm_marks: tuple[tuple[int, int], ...]  # (start of a wasm instruction's code, its offset), in order


def link(code: FunctionCode, resolve: Callable[[Target], int]) -> bytes:
    """``code``'s bytes with every relocation set to ``resolve(target)``."""
    out = bytearray(code.code)
    for offset, width, target in code.relocations:
        out[offset:offset + width] = resolve(target).to_bytes(width, "little")
    return bytes(out)


def module_cache(vmod: ValidatedModule, key: CodeKey) -> dict[int, FunctionCode]:
    """The code compiled (or deserialized) for ``vmod`` under ``key``: function index -> code."""
    return vmod.native_code.setdefault(key, {})
