"""The interpreter's inline templates compute exactly what runtime.numerics (the differentially
tested reference) computes, in every operand-kind variant and every form."""

from __future__ import annotations

import itertools
import math

import pytest

from wasmjit import opcodes
from wasmjit.interp import templates as T
from wasmjit.runtime import numerics as N

I32_EDGES = [0, 1, 2, 31, 32, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE,
             0xFFFFFFFF, 0x12345678]
I64_EDGES = [0, 1, 63, 64, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x100000000, 0x7FFFFFFFFFFFFFFF,
             0x8000000000000000, 0xFFFFFFFFFFFFFFFF, 0x0123456780000000, 0xFEDCBA9876543210]
F32_EDGES = [0, 0x80000000, 0x3F800000, 0xBF800000, 0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00001,
             0x7FA00000, 1, 0x80000001, 0x7F7FFFFF]
F64_EDGES = [0.0, -0.0, 1.0, -1.5, math.inf, -math.inf, math.nan, 5e-324, 1.7976931348623157e308,
             -2.5, 2.0**63, -(2.0**31)]
EDGES = {"i32": I32_EDGES, "i64": I64_EDGES, "f32": F32_EDGES, "f64": F64_EDGES}


def _bits(value: object) -> object:
    """Compare floats by bit pattern (so -0.0 != 0.0 and NaNs compare by payload)."""
    return N.f64_to_bits(value) if isinstance(value, float) else value


def _inline_ops() -> list[opcodes.Op]:
    return [op for op in opcodes.OPS if op.ident in T.INLINE and op.ident in N.FUNCS]


@pytest.mark.parametrize("op", _inline_ops(), ids=lambda op: op.name)
def test_inline_template_matches_numerics(op: opcodes.Op) -> None:
    arity = len(op.params)
    operand_sets = list(itertools.product(*(EDGES[t] for t in op.params)))
    for kinds in ("".join(k) for k in itertools.product("rk", repeat=arity)):
        factory = T.numeric(op.ident, kinds)
        for values in operand_sets:
            frame = [None, *values]  # registers 1..arity hold the operands; slot 0 receives
            pairs = enumerate(zip(kinds, values, strict=True))
            args = [i + 1 if kind == "r" else value for i, (kind, value) in pairs]
            factory(0, *args, 7)(frame)
            expected = N.FUNCS[op.ident](*values)
            if isinstance(expected, float) and math.isnan(expected):
                assert math.isnan(frame[0]), (op.name, kinds, values)
            else:
                assert _bits(frame[0]) == _bits(expected), (op.name, kinds, values, frame[0], expected)


@pytest.mark.parametrize("ident", sorted(T.COMPARISONS - {"ref_is_null"}))
def test_comparison_branch_forms_agree_with_value_form(ident: str) -> None:
    op = opcodes.BY_NAME[ident.replace("_", ".", 1)]
    arity = len(op.params)
    kinds = "r" * arity
    for values in itertools.product(*(EDGES[t] for t in op.params)):
        frame = [None, *values]
        regs = list(range(1, arity + 1))
        truth = N.FUNCS[ident](*values)
        assert T.numeric(ident, kinds, "br_if")(*regs, 100, 200)(frame) == (100 if truth else 200)
        assert T.numeric(ident, kinds, "if")(*regs, 300, 400)(frame) == (300 if truth else 400)
        counter = [0, 0]  # [back-edges, OSR limit (0: never)]
        assert T.numeric(ident, kinds, "br_if_back")(*regs, counter, 5, 6)(frame) == (5 if truth else 6)
        assert counter == [1 if truth else 0, 0]
        if truth:  # the back-edge that reaches the limit asks for on-stack replacement
            with pytest.raises(T.OsrRequest) as request:
                T.numeric(ident, kinds, "br_if_back")(*regs, [1, 2], 5, 6)(frame)
            assert request.value.target == 5


def test_every_numeric_op_has_a_template_or_function() -> None:
    """Value-producing table-typed ops without immediates are what the translator templates."""
    numeric = [op for op in opcodes.OPS if op.params and op.results and not op.width
               and not op.is_simd and op.imm == opcodes.IMM_NONE]
    assert len(numeric) == 136
    assert [op.name for op in numeric if op.ident not in T.INLINE and op.ident not in N.FUNCS] == []
