"""Python expression templates for numeric and memory instructions, and closures built from them.

The interpreter's handlers are closures over their operands. For each numeric op there is one
expression in the operands ``A``, ``B`` (raw values, see runtime.store); an op without an inline
expression here calls its function in :mod:`wasmjit.runtime.numerics`. Each expression becomes a
closure factory per operand-kind variant (``r`` = a frame register, ``k`` = a constant the
closure captures) and per form: store the value, branch if true (``br_if``, optionally counting
a loop back-edge), or fall through if true and jump otherwise (``if``). Factories are generated
on first use and cached. Imports: opcodes, runtime.numerics, errors.
"""

from __future__ import annotations

import math
import re
import struct
from collections.abc import Callable
from typing import Any

from .. import opcodes as O
from ..errors import Trap, TrapCode
from ..runtime import numerics

M32, M64 = 0xFFFFFFFF, 0xFFFFFFFFFFFFFFFF
S32, S64 = 0x80000000, 0x8000000000000000

# Inline expressions for the hot, simple ops. Comparisons are Python booleans here; the value
# form turns them into 0/1. Signed comparisons flip the sign bit to compare as unsigned.
INLINE: dict[str, str] = {
    "i32_eqz": "A == 0", "i32_eq": "A == B", "i32_ne": "A != B",
    "i32_lt_u": "A < B", "i32_gt_u": "A > B", "i32_le_u": "A <= B", "i32_ge_u": "A >= B",
    "i32_lt_s": "(A ^ S32) < (B ^ S32)", "i32_gt_s": "(A ^ S32) > (B ^ S32)",
    "i32_le_s": "(A ^ S32) <= (B ^ S32)", "i32_ge_s": "(A ^ S32) >= (B ^ S32)",
    "i64_eqz": "A == 0", "i64_eq": "A == B", "i64_ne": "A != B",
    "i64_lt_u": "A < B", "i64_gt_u": "A > B", "i64_le_u": "A <= B", "i64_ge_u": "A >= B",
    "i64_lt_s": "(A ^ S64) < (B ^ S64)", "i64_gt_s": "(A ^ S64) > (B ^ S64)",
    "i64_le_s": "(A ^ S64) <= (B ^ S64)", "i64_ge_s": "(A ^ S64) >= (B ^ S64)",
    "f64_eq": "A == B", "f64_ne": "A != B", "f64_lt": "A < B", "f64_gt": "A > B",
    "f64_le": "A <= B", "f64_ge": "A >= B",
    "i32_add": "(A + B) & M32", "i32_sub": "(A - B) & M32", "i32_mul": "(A * B) & M32",
    "i32_and": "A & B", "i32_or": "A | B", "i32_xor": "A ^ B",
    "i32_shl": "(A << (B & 31)) & M32", "i32_shr_u": "A >> (B & 31)",
    "i32_shr_s": "(((A ^ S32) - S32) >> (B & 31)) & M32",
    "i64_add": "(A + B) & M64", "i64_sub": "(A - B) & M64", "i64_mul": "(A * B) & M64",
    "i64_and": "A & B", "i64_or": "A | B", "i64_xor": "A ^ B",
    "i64_shl": "(A << (B & 63)) & M64", "i64_shr_u": "A >> (B & 63)",
    "i64_shr_s": "(((A ^ S64) - S64) >> (B & 63)) & M64",
    "i32_popcnt": "A.bit_count()", "i64_popcnt": "A.bit_count()",
    "i32_clz": "32 - A.bit_length()", "i64_clz": "64 - A.bit_length()",
    "i32_wrap_i64": "A & M32", "i64_extend_i32_u": "A",
    "i64_extend_i32_s": "((A ^ S32) - S32) & M64",
    "i32_extend8_s": "(((A & 0xFF) ^ 0x80) - 0x80) & M32",
    "i32_extend16_s": "(((A & 0xFFFF) ^ 0x8000) - 0x8000) & M32",
    "i64_extend8_s": "(((A & 0xFF) ^ 0x80) - 0x80) & M64",
    "i64_extend16_s": "(((A & 0xFFFF) ^ 0x8000) - 0x8000) & M64",
    "i64_extend32_s": "(((A & M32) ^ S32) - S32) & M64",
    "f64_add": "A + B", "f64_sub": "A - B", "f64_mul": "A * B", "f64_neg": "-A",
    "f64_abs": "fabs(A)", "f64_copysign": "copysign(A, B)",
    "f64_convert_i32_u": "float(A)", "f64_convert_i64_u": "float(A)",
    "f64_convert_i32_s": "float((A ^ S32) - S32)", "f64_convert_i64_s": "float((A ^ S64) - S64)",
    "f32_neg": "A ^ S32", "f32_abs": "A & 0x7FFFFFFF",
    "f32_copysign": "(A & 0x7FFFFFFF) | (B & S32)",
    "i32_reinterpret_f32": "A", "f32_reinterpret_i32": "A",
    "ref_is_null": "A == 0",
}

# struct format and result mask of each load; format and value mask of each store.
LOADS: dict[str, tuple[str, str]] = {
    "i32_load": ("<I", ""), "i64_load": ("<Q", ""), "f32_load": ("<I", ""), "f64_load": ("<d", ""),
    "i32_load8_s": ("<b", " & M32"), "i32_load8_u": ("<B", ""), "i32_load16_s": ("<h", " & M32"),
    "i32_load16_u": ("<H", ""), "i64_load8_s": ("<b", " & M64"), "i64_load8_u": ("<B", ""),
    "i64_load16_s": ("<h", " & M64"), "i64_load16_u": ("<H", ""), "i64_load32_s": ("<i", " & M64"),
    "i64_load32_u": ("<I", ""),
}
STORES: dict[str, tuple[str, str]] = {
    "i32_store": ("<I", ""), "i64_store": ("<Q", ""), "f32_store": ("<I", ""), "f64_store": ("<d", ""),
    "i32_store8": ("<B", " & 0xFF"), "i32_store16": ("<H", " & 0xFFFF"), "i64_store8": ("<B", " & 0xFF"),
    "i64_store16": ("<H", " & 0xFFFF"), "i64_store32": ("<I", " & M32"),
}

# The names templates may use.
class OsrRequest(Exception):  # noqa: N818 - a request, not an error
    """Raised by a loop back-edge when its function's back-edge count reaches the OSR limit:
    ``target`` is the loop header's pc; the interpreter entry decides what to do."""

    def __init__(self, target: int) -> None:
        self.target = target


NAMESPACE: dict[str, Any] = {
    "OsrRequest": OsrRequest,
    "M32": M32, "M64": M64, "S32": S32, "S64": S64, "fabs": math.fabs, "copysign": math.copysign,
    "Trap": Trap, "OOB": TrapCode.MEMORY_OUT_OF_BOUNDS, "struct_error": struct.error,
}
NAMESPACE.update(numerics.FUNCS)
for _fmt in {fmt for fmt, _ in (*LOADS.values(), *STORES.values())}:
    _s = struct.Struct(_fmt)
    NAMESPACE["unpack_" + _fmt[1]] = _s.unpack_from
    NAMESPACE["pack_" + _fmt[1]] = _s.pack_into

# Which numeric ops produce a boolean (so they can fuse with br_if/if).
_CMP = re.compile(r"\.(eqz|eq|ne|lt|gt|le|ge)(_[su])?$")
COMPARISONS = frozenset(op.ident for op in O.OPS if op.params and not op.is_simd and _CMP.search(op.name))
COMPARISONS |= {"ref_is_null"}


def expression(ident: str, arity: int) -> str:
    """The expression of an op over A (and B): inline if known, else a numerics call."""
    inline = INLINE.get(ident)
    if inline is not None:
        return inline
    return f"{ident}(A, B)" if arity == 2 else f"{ident}(A)"


_WORD = {letter: re.compile(rf"\b{letter}\b") for letter in "ABV"}


def _substitute(expr: str, kinds: str, letters: str = "AB") -> tuple[str, list[str]]:
    """Replace each operand letter by a register read or a captured constant."""
    params = []
    for letter, kind in zip(letters, kinds, strict=False):
        param = letter.lower() + kind
        params.append(param)
        expr = _WORD[letter].sub(f"R[{param}]" if kind == "r" else param, expr)
    return expr, params


_cache: dict[str, Callable[..., Any]] = {}


def build(name: str, params: list[str], body: str) -> Callable[..., Any]:
    """Compile ``def make(*params): def <name>(R): <body>; return <name>`` once and cache it."""
    factory = _cache.get(name)
    if factory is None:
        indented = "\n".join("        " + line for line in body.splitlines())
        source = f"def make({', '.join(params)}):\n    def {name}(R):\n{indented}\n    return {name}\n"
        namespace = dict(NAMESPACE)
        exec(compile(source, f"<wasmjit handler {name}>", "exec"), namespace)
        factory = _cache[name] = namespace["make"]
    return factory


def numeric(ident: str, kinds: str, form: str = "value") -> Callable[..., Any]:
    """A factory for a numeric op. Forms and factory signatures:

    ``value``: (dest, *operands, next); ``br_if``: (*operands, target, next);
    ``br_if_back``: (*operands, counter, target, next) also counts a loop back-edge;
    ``if``: (*operands, next, else_pc) falls through when true.
    """
    expr, params = _substitute(expression(ident, len(kinds)), kinds)
    if form == "value":
        value = f"1 if {expr} else 0" if ident in COMPARISONS else expr
        return build(f"{ident}_{kinds}", ["d", *params, "n"], f"R[d] = {value}\nreturn n")
    if form == "br_if":
        return build(f"br_if_{ident}_{kinds}", [*params, "t", "n"], f"return t if {expr} else n")
    if form == "br_if_back":
        body = (f"if {expr}:\n    c[0] += 1\n    if c[0] == c[1]:\n        raise OsrRequest(t)\n"
                "    return t\nreturn n")
        return build(f"br_if_back_{ident}_{kinds}", [*params, "c", "t", "n"], body)
    assert form == "if", form
    return build(f"if_{ident}_{kinds}", [*params, "n", "e"], f"return n if {expr} else e")


def load(ident: str, kind: str) -> Callable[..., Any]:
    """Factory ``(dest, address, offset, memory, next)`` for a load; traps out of bounds."""
    fmt, mask = LOADS[ident]
    address = "R[a] + off" if kind == "r" else "a + off"
    body = (f"try:\n    R[d] = unpack_{fmt[1]}(mem.view, {address})[0]{mask}\n"
            f"except struct_error:\n    raise Trap(OOB) from None\nreturn n")
    return build(f"{ident}_{kind}", ["d", "a", "off", "mem", "n"], body)


def store(ident: str, kinds: str) -> Callable[..., Any]:
    """Factory ``(address, value, offset, memory, next)`` for a store; traps out of bounds."""
    fmt, mask = STORES[ident]
    address = "R[a] + off" if kinds[0] == "r" else "a + off"
    value = ("R[v]" if kinds[1] == "r" else "v") + mask
    body = (f"try:\n    pack_{fmt[1]}(mem.view, {address}, {value})\n"
            f"except struct_error:\n    raise Trap(OOB) from None\nreturn n")
    return build(f"{ident}_{kinds}", ["a", "v", "off", "mem", "n"], body)
