"""Bit-exact semantics of every WebAssembly 2.0 scalar numeric instruction (spec 4.3 "Numerics").

One function per op, named by ``Op.ident`` and collected in :data:`FUNCS`; the interpreter calls
them and JIT tests use them as an oracle. Values are the engine's raw values: i32/i64 are
unsigned ints, f32 is its IEEE bit pattern (an int, so NaN payloads survive moves), f64 is a
Python float. Traps raise :class:`~wasmjit.errors.Trap`. Imports: stdlib, opcodes, errors.

f32 arithmetic is done in double precision and rounded once to f32. That double rounding is
exact for + - * / and sqrt because 53 >= 2 * 24 + 2 (Figueroa, "When is double rounding
innocuous?"); for ops whose result is exact in f32 (ceil, min, promote...) it is trivially so.

Speed: f32 <-> double conversions go through one 8-byte scratch buffer seen as float/uint32
and double/uint64 memoryviews (``_F32[0] = x; return _U32[0]``): item access on a memoryview
is a C cast with no call, no tuple and no bytes object, 1.3-1.5x faster than precompiled
``struct.Struct`` pack/unpack (f32.add: ~215 ns against ~285 ns with one '<II' pack and one
'<ff' unpack), and the C cast ``(float)d`` rounds to nearest with overflow to inf (IEEE 754 /
C Annex F; the tests pin the boundary cases) where ``struct.pack('f')`` raises OverflowError.
Invariant that makes the shared buffer safe under the
GIL: every use writes the buffer and reads the result back with no Python-level call in
between, so no eval-breaker check (thread switch, signal handler) can run in the middle.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from ..errors import Trap, TrapCode
from ..opcodes import OPS

MASK32 = 0xFFFFFFFF
MASK64 = 0xFFFFFFFFFFFFFFFF
_S32 = 0x80000000  # i32 sign bit, also the f32 sign bit
_S64 = 0x8000000000000000
_F32_ABS = 0x7FFFFFFF  # f32 bits without the sign
_F32_INF = 0x7F800000
_F32_QUIET = 0x00400000  # the f32 quiet-NaN bit (top payload bit)
_F32_CANON_NAN = 0x7FC00000
_F32_NEG_ONE = 0xBF800000
_F32_ONE = 0x3F800000
_TWO52 = 4503599627370496.0  # doubles at or above 2**52 in magnitude are integers
_NAN = float("nan")  # the canonical f64 NaN 0x7FF8000000000000 on every IEEE platform
_INF = math.inf

_DIV0 = TrapCode.INTEGER_DIVISION_BY_ZERO
_OVERFLOW = TrapCode.INTEGER_OVERFLOW
_BAD_CONV = TrapCode.BAD_CONVERSION_TO_INTEGER

_floor, _ceil, _sqrt, _copysign, _fabs = math.floor, math.ceil, math.sqrt, math.copysign, math.fabs

# --- The scratch buffer ------------------------------------------------------------------------
# Native byte order is the same for all four views, so each aliases the other's bits exactly.
_SCRATCH = bytearray(8)
_F32 = memoryview(_SCRATCH).cast("f")
_U32 = memoryview(_SCRATCH).cast("I")
_F64 = memoryview(_SCRATCH).cast("d")
_U64 = memoryview(_SCRATCH).cast("Q")
assert _F32.itemsize == _U32.itemsize == 4 and _F64.itemsize == _U64.itemsize == 8



# --- Representation helpers --------------------------------------------------------------------


def signed32(x: int) -> int:
    """The i32 bit pattern ``x`` as a signed Python int."""
    return (x ^ _S32) - _S32


def signed64(x: int) -> int:
    """The i64 bit pattern ``x`` as a signed Python int."""
    return (x ^ _S64) - _S64


def f64_to_bits(x: float) -> int:
    """The IEEE bit pattern of a double, NaN payload included."""
    _F64[0] = x
    return _U64[0]


def bits_to_f64(b: int) -> float:
    """The double with bit pattern ``b``, NaN payload included."""
    _U64[0] = b
    return _F64[0]


def f32_to_float(bits: int) -> float:
    """The exact value of an f32; a NaN maps to a double NaN with its payload shifted left 29."""
    _U32[0] = bits
    x = _F32[0]
    if x != x:
        # The hardware float->double conversion sets the quiet bit; build the bits by hand so a
        # signalling f32 NaN stays distinguishable (float_to_f32 inverts this exactly).
        _U64[0] = ((bits & _S32) << 32) | 0x7FF0000000000000 | ((bits & 0x7FFFFF) << 29)
        return _F64[0]
    return x


def float_to_f32(x: float) -> int:
    """Round a double to the nearest f32 (overflow to inf); NaNs keep sign and top 23 payload bits."""
    if x != x:
        _F64[0] = x
        b = _U64[0]
        # (float)x would set the quiet bit; keep the payload as is (inverse of f32_to_float).
        # A payload whose top 23 bits are all zero would read as inf: make it a quiet NaN.
        return ((b >> 32) & _S32) | _F32_INF | (((b >> 29) & 0x7FFFFF) or _F32_QUIET)
    _F32[0] = x
    return _U32[0]


# --- i32 ---------------------------------------------------------------------------------------


def i32_eqz(a: int) -> int:
    """i32.eqz."""
    return 1 if a == 0 else 0


def i32_eq(a: int, b: int) -> int:
    """i32.eq."""
    return 1 if a == b else 0


def i32_ne(a: int, b: int) -> int:
    """i32.ne."""
    return 1 if a != b else 0


def i32_lt_s(a: int, b: int) -> int:
    """i32.lt_s (flipping the sign bit maps signed order onto unsigned order)."""
    return 1 if (a ^ _S32) < (b ^ _S32) else 0


def i32_lt_u(a: int, b: int) -> int:
    """i32.lt_u."""
    return 1 if a < b else 0


def i32_gt_s(a: int, b: int) -> int:
    """i32.gt_s."""
    return 1 if (a ^ _S32) > (b ^ _S32) else 0


def i32_gt_u(a: int, b: int) -> int:
    """i32.gt_u."""
    return 1 if a > b else 0


def i32_le_s(a: int, b: int) -> int:
    """i32.le_s."""
    return 1 if (a ^ _S32) <= (b ^ _S32) else 0


def i32_le_u(a: int, b: int) -> int:
    """i32.le_u."""
    return 1 if a <= b else 0


def i32_ge_s(a: int, b: int) -> int:
    """i32.ge_s."""
    return 1 if (a ^ _S32) >= (b ^ _S32) else 0


def i32_ge_u(a: int, b: int) -> int:
    """i32.ge_u."""
    return 1 if a >= b else 0


def i32_clz(a: int) -> int:
    """i32.clz."""
    return 32 - a.bit_length()


def i32_ctz(a: int) -> int:
    """i32.ctz (``a & -a`` isolates the lowest set bit)."""
    return (a & -a).bit_length() - 1 if a else 32


def i32_popcnt(a: int) -> int:
    """i32.popcnt."""
    return a.bit_count()


def i32_add(a: int, b: int) -> int:
    """i32.add."""
    return (a + b) & MASK32


def i32_sub(a: int, b: int) -> int:
    """i32.sub."""
    return (a - b) & MASK32


def i32_mul(a: int, b: int) -> int:
    """i32.mul."""
    return (a * b) & MASK32


def i32_div_s(a: int, b: int) -> int:
    """i32.div_s: traps on zero and on INT_MIN / -1; rounds toward zero."""
    if b == 0:
        raise Trap(_DIV0)
    if a < _S32 and b < _S32:
        return a // b  # both non-negative: the common case needs no sign handling
    if a == _S32 and b == MASK32:
        raise Trap(_OVERFLOW)  # the quotient 2**31 is not representable (spec 4.3.2 idiv_s)
    x = (a ^ _S32) - _S32
    y = (b ^ _S32) - _S32
    q = x // y
    if q < 0 and q * y != x:
        q += 1  # Python's // floors; wasm truncates toward zero
    return q & MASK32


def i32_div_u(a: int, b: int) -> int:
    """i32.div_u: traps on zero."""
    if b == 0:
        raise Trap(_DIV0)
    return a // b


def i32_rem_s(a: int, b: int) -> int:
    """i32.rem_s: traps on zero; the result has the dividend's sign; INT_MIN rem -1 is 0."""
    if b == 0:
        raise Trap(_DIV0)
    if a < _S32 and b < _S32:
        return a % b
    x = (a ^ _S32) - _S32
    y = (b ^ _S32) - _S32
    r = x % y
    if r and (x ^ y) < 0:
        r -= y  # Python's % takes the divisor's sign; wasm's takes the dividend's
    return r & MASK32


def i32_rem_u(a: int, b: int) -> int:
    """i32.rem_u: traps on zero."""
    if b == 0:
        raise Trap(_DIV0)
    return a % b


def i32_and(a: int, b: int) -> int:
    """i32.and."""
    return a & b


def i32_or(a: int, b: int) -> int:
    """i32.or."""
    return a | b


def i32_xor(a: int, b: int) -> int:
    """i32.xor."""
    return a ^ b


def i32_shl(a: int, b: int) -> int:
    """i32.shl (count taken mod 32)."""
    return (a << (b & 31)) & MASK32


def i32_shr_s(a: int, b: int) -> int:
    """i32.shr_s (count taken mod 32)."""
    return (((a ^ _S32) - _S32) >> (b & 31)) & MASK32


def i32_shr_u(a: int, b: int) -> int:
    """i32.shr_u (count taken mod 32)."""
    return a >> (b & 31)


def i32_rotl(a: int, b: int) -> int:
    """i32.rotl (count taken mod 32)."""
    k = b & 31
    return ((a << k) | (a >> (32 - k))) & MASK32


def i32_rotr(a: int, b: int) -> int:
    """i32.rotr (count taken mod 32)."""
    k = b & 31
    return ((a >> k) | (a << (32 - k))) & MASK32


# --- i64 ---------------------------------------------------------------------------------------


def i64_eqz(a: int) -> int:
    """i64.eqz."""
    return 1 if a == 0 else 0


def i64_eq(a: int, b: int) -> int:
    """i64.eq."""
    return 1 if a == b else 0


def i64_ne(a: int, b: int) -> int:
    """i64.ne."""
    return 1 if a != b else 0


def i64_lt_s(a: int, b: int) -> int:
    """i64.lt_s."""
    return 1 if (a ^ _S64) < (b ^ _S64) else 0


def i64_lt_u(a: int, b: int) -> int:
    """i64.lt_u."""
    return 1 if a < b else 0


def i64_gt_s(a: int, b: int) -> int:
    """i64.gt_s."""
    return 1 if (a ^ _S64) > (b ^ _S64) else 0


def i64_gt_u(a: int, b: int) -> int:
    """i64.gt_u."""
    return 1 if a > b else 0


def i64_le_s(a: int, b: int) -> int:
    """i64.le_s."""
    return 1 if (a ^ _S64) <= (b ^ _S64) else 0


def i64_le_u(a: int, b: int) -> int:
    """i64.le_u."""
    return 1 if a <= b else 0


def i64_ge_s(a: int, b: int) -> int:
    """i64.ge_s."""
    return 1 if (a ^ _S64) >= (b ^ _S64) else 0


def i64_ge_u(a: int, b: int) -> int:
    """i64.ge_u."""
    return 1 if a >= b else 0


def i64_clz(a: int) -> int:
    """i64.clz."""
    return 64 - a.bit_length()


def i64_ctz(a: int) -> int:
    """i64.ctz."""
    return (a & -a).bit_length() - 1 if a else 64


def i64_popcnt(a: int) -> int:
    """i64.popcnt."""
    return a.bit_count()


def i64_add(a: int, b: int) -> int:
    """i64.add."""
    return (a + b) & MASK64


def i64_sub(a: int, b: int) -> int:
    """i64.sub."""
    return (a - b) & MASK64


def i64_mul(a: int, b: int) -> int:
    """i64.mul."""
    return (a * b) & MASK64


def i64_div_s(a: int, b: int) -> int:
    """i64.div_s: traps on zero and on INT_MIN / -1; rounds toward zero."""
    if b == 0:
        raise Trap(_DIV0)
    if a < _S64 and b < _S64:
        return a // b  # both non-negative: the common case needs no sign handling
    if a == _S64 and b == MASK64:
        raise Trap(_OVERFLOW)
    x = (a ^ _S64) - _S64
    y = (b ^ _S64) - _S64
    q = x // y
    if q < 0 and q * y != x:
        q += 1  # Python's // floors; wasm truncates toward zero
    return q & MASK64


def i64_div_u(a: int, b: int) -> int:
    """i64.div_u: traps on zero."""
    if b == 0:
        raise Trap(_DIV0)
    return a // b


def i64_rem_s(a: int, b: int) -> int:
    """i64.rem_s: traps on zero; the result has the dividend's sign; INT_MIN rem -1 is 0."""
    if b == 0:
        raise Trap(_DIV0)
    if a < _S64 and b < _S64:
        return a % b
    x = (a ^ _S64) - _S64
    y = (b ^ _S64) - _S64
    r = x % y
    if r and (x ^ y) < 0:
        r -= y  # Python's % takes the divisor's sign; wasm's takes the dividend's
    return r & MASK64


def i64_rem_u(a: int, b: int) -> int:
    """i64.rem_u: traps on zero."""
    if b == 0:
        raise Trap(_DIV0)
    return a % b


def i64_and(a: int, b: int) -> int:
    """i64.and."""
    return a & b


def i64_or(a: int, b: int) -> int:
    """i64.or."""
    return a | b


def i64_xor(a: int, b: int) -> int:
    """i64.xor."""
    return a ^ b


def i64_shl(a: int, b: int) -> int:
    """i64.shl (count taken mod 64)."""
    return (a << (b & 63)) & MASK64


def i64_shr_s(a: int, b: int) -> int:
    """i64.shr_s (count taken mod 64)."""
    return (((a ^ _S64) - _S64) >> (b & 63)) & MASK64


def i64_shr_u(a: int, b: int) -> int:
    """i64.shr_u (count taken mod 64)."""
    return a >> (b & 63)


def i64_rotl(a: int, b: int) -> int:
    """i64.rotl (count taken mod 64)."""
    k = b & 63
    return ((a << k) | (a >> (64 - k))) & MASK64


def i64_rotr(a: int, b: int) -> int:
    """i64.rotr (count taken mod 64)."""
    k = b & 63
    return ((a >> k) | (a << (64 - k))) & MASK64


# --- f32 comparisons ---------------------------------------------------------------------------
# eq/ne on the bits are faster than converting; the orderings convert through the scratch buffer
# (a NaN compares false either way, whatever its payload).


def f32_eq(a: int, b: int) -> int:
    """f32.eq: NaN is unequal to everything, -0 equals +0."""
    if a == b:
        return 0 if (a & _F32_ABS) > _F32_INF else 1
    return 1 if not (a | b) & _F32_ABS else 0


def f32_ne(a: int, b: int) -> int:
    """f32.ne."""
    if a == b:
        return 1 if (a & _F32_ABS) > _F32_INF else 0
    return 0 if not (a | b) & _F32_ABS else 1


def f32_lt(a: int, b: int) -> int:
    """f32.lt."""
    _U32[0] = a
    _U32[1] = b
    return 1 if _F32[0] < _F32[1] else 0


def f32_gt(a: int, b: int) -> int:
    """f32.gt."""
    _U32[0] = a
    _U32[1] = b
    return 1 if _F32[0] > _F32[1] else 0


def f32_le(a: int, b: int) -> int:
    """f32.le."""
    _U32[0] = a
    _U32[1] = b
    return 1 if _F32[0] <= _F32[1] else 0


def f32_ge(a: int, b: int) -> int:
    """f32.ge."""
    _U32[0] = a
    _U32[1] = b
    return 1 if _F32[0] >= _F32[1] else 0


# --- f64 comparisons ---------------------------------------------------------------------------


def f64_eq(a: float, b: float) -> int:
    """f64.eq."""
    return 1 if a == b else 0


def f64_ne(a: float, b: float) -> int:
    """f64.ne."""
    return 1 if a != b else 0


def f64_lt(a: float, b: float) -> int:
    """f64.lt."""
    return 1 if a < b else 0


def f64_gt(a: float, b: float) -> int:
    """f64.gt."""
    return 1 if a > b else 0


def f64_le(a: float, b: float) -> int:
    """f64.le."""
    return 1 if a <= b else 0


def f64_ge(a: float, b: float) -> int:
    """f64.ge."""
    return 1 if a >= b else 0


# --- f32 arithmetic ----------------------------------------------------------------------------
# NaN results (spec 4.3.3 "NaN propagation"): the hardware returns a NaN operand with its quiet
# bit set, or the default NaN when it makes one, and the double -> f32 conversion keeps the top
# payload bits, so canonical inputs give a canonical NaN and others an arithmetic NaN.


def f32_abs(a: int) -> int:
    """f32.abs: clears the sign bit (a bit operation: NaN payloads are kept, spec 4.3.3)."""
    return a & _F32_ABS


def f32_neg(a: int) -> int:
    """f32.neg: flips the sign bit."""
    return a ^ _S32


def f32_copysign(a: int, b: int) -> int:
    """f32.copysign: ``a``'s magnitude bits with ``b``'s sign bit."""
    return (a & _F32_ABS) | (b & _S32)


# ceil/floor/trunc work on the bits (measured faster than converting and calling math.floor).
# With biased exponent e, the value's unit (1.0) is bit 150 - e of the pattern, so clearing the
# bits below it truncates toward zero, and adding 1 << (150 - e) adds 1.0 to the magnitude (a
# mantissa carry correctly bumps the exponent). Patterns with e >= 150 (|x| >= 2**23, inf, NaN)
# are already integral. The sign bit is never touched, so a zero result keeps the operand's
# sign (e.g. ceil(-0.5) = -0.0), as spec 4.3.3 fceil/ffloor/ftrunc require.


def _f32_integral(a: int) -> int:
    """An already-integral operand: itself, or a NaN quieted (spec: ceil etc. of NaN is nans{z})."""
    return a | _F32_QUIET if (a & _F32_ABS) > _F32_INF else a


def f32_ceil(a: int) -> int:
    """f32.ceil."""
    e = (a >> 23) & 0xFF
    if e >= 150:
        return _f32_integral(a)
    if e < 127:  # |x| < 1: ±0 stays, negatives go to -0, positives to 1
        if not a & _F32_ABS or a & _S32:
            return a & _S32
        return _F32_ONE
    k = 150 - e
    t = a >> k << k
    if t != a and not a & _S32:
        t += 1 << k
    return t


def f32_floor(a: int) -> int:
    """f32.floor."""
    e = (a >> 23) & 0xFF
    if e >= 150:
        return _f32_integral(a)
    if e < 127:  # |x| < 1: ±0 stays, positives go to +0, negatives to -1
        if not a & _F32_ABS or not a & _S32:
            return a & _S32
        return _F32_NEG_ONE
    k = 150 - e
    t = a >> k << k
    if t != a and a & _S32:
        t += 1 << k
    return t


def f32_trunc(a: int) -> int:
    """f32.trunc."""
    e = (a >> 23) & 0xFF
    if e >= 150:
        return _f32_integral(a)
    if e < 127:
        return a & _S32
    k = 150 - e
    return a >> k << k


def f32_nearest(a: int) -> int:
    """f32.nearest: round half to even."""
    # Unlike ceil/floor/trunc, converting is faster here than working on the bits: the double
    # addition does the rounding (see f64_nearest); the result is an integer below 2**23, exact
    # in f32.
    _U32[0] = a
    x = _F32[0]
    if 0.0 < x < 8388608.0:
        _F32[0] = (x + _TWO52) - _TWO52
        return _U32[0]
    if -8388608.0 < x < 0.0:
        _F32[0] = -((_TWO52 - x) - _TWO52)
        return _U32[0]
    return _f32_integral(a)  # ±0, |x| >= 2**23, inf, NaN


def f32_sqrt(a: int) -> int:
    """f32.sqrt (a negative operand gives the canonical NaN; math.sqrt would raise)."""
    _U32[0] = a
    x = _F32[0]
    if x < 0.0:  # -0.0 is not < 0: sqrt(-0) = -0
        return _F32_CANON_NAN
    _F32[0] = _sqrt(x)
    return _U32[0]


def f32_add(a: int, b: int) -> int:
    """f32.add."""
    _U32[0] = a
    _U32[1] = b
    _F32[0] = _F32[0] + _F32[1]
    return _U32[0]


def f32_sub(a: int, b: int) -> int:
    """f32.sub."""
    _U32[0] = a
    _U32[1] = b
    _F32[0] = _F32[0] - _F32[1]
    return _U32[0]


def f32_mul(a: int, b: int) -> int:
    """f32.mul."""
    _U32[0] = a
    _U32[1] = b
    _F32[0] = _F32[0] * _F32[1]
    return _U32[0]


def f32_div(a: int, b: int) -> int:
    """f32.div (division by zero gives ±inf or NaN as in IEEE 754)."""
    _U32[0] = a
    _U32[1] = b
    try:
        _F32[0] = _F32[0] / _F32[1]
    except ZeroDivisionError:
        # Python raises where IEEE 754 (spec 4.3.3 fdiv) gives: NaN / 0 = that NaN (quieted),
        # 0 / 0 = a canonical NaN, x / ±0 = inf with the xor of the signs.
        if (a & _F32_ABS) > _F32_INF:
            return a | _F32_QUIET
        if not a & _F32_ABS:
            return _F32_CANON_NAN
        return ((a ^ b) & _S32) | _F32_INF
    return _U32[0]


def f32_min(a: int, b: int) -> int:
    """f32.min: NaN if either is NaN; -0 is less than +0."""
    _U32[0] = a
    _U32[1] = b
    x = _F32[0]
    y = _F32[1]
    if x < y:
        return a
    if y < x:
        return b
    if x == y:
        return a | b  # equal non-zero values have equal bits; for ±0 the sign bit wins
    return (a if x != x else b) | _F32_QUIET  # propagate a NaN operand, quieted (spec 4.3.3)


def f32_max(a: int, b: int) -> int:
    """f32.max: NaN if either is NaN; +0 is greater than -0."""
    _U32[0] = a
    _U32[1] = b
    x = _F32[0]
    y = _F32[1]
    if x > y:
        return a
    if y > x:
        return b
    if x == y:
        return a & b  # for ±0 a clear sign bit wins
    return (a if x != x else b) | _F32_QUIET


# --- f64 arithmetic ----------------------------------------------------------------------------
# abs/neg/copysign compile to sign-bit operations in CPython (fabs, unary minus, copysign), so
# NaN payloads are kept exactly as spec 4.3.3 requires. Arithmetic NaNs come from the hardware
# as described above for f32.


def f64_abs(a: float) -> float:
    """f64.abs."""
    return _fabs(a)


def f64_neg(a: float) -> float:
    """f64.neg."""
    return -a


def f64_copysign(a: float, b: float) -> float:
    """f64.copysign."""
    return _copysign(a, b)


def f64_ceil(a: float) -> float:
    """f64.ceil (copysign keeps the operand's sign on a zero result: ceil(-0.5) = -0.0)."""
    if -_TWO52 < a < _TWO52:
        return _copysign(_ceil(a), a)
    return a if a == a else a + a  # inf and big values are integral; a NaN is quieted


def f64_floor(a: float) -> float:
    """f64.floor."""
    if -_TWO52 < a < _TWO52:
        return _copysign(_floor(a), a)
    return a if a == a else a + a


def f64_trunc(a: float) -> float:
    """f64.trunc."""
    if -_TWO52 < a < _TWO52:
        return _copysign(int(a), a)
    return a if a == a else a + a


def f64_nearest(a: float) -> float:
    """f64.nearest: round half to even."""
    # Below 2**52 adding 2**52 leaves no fraction bits, so the hardware's round-half-to-even
    # addition does the rounding; subtracting it back is exact. Negatives are mirrored so that
    # a zero result keeps the minus sign (nearest(-0.3) = -0.0). Faster than round().
    if 0.0 < a < _TWO52:
        return (a + _TWO52) - _TWO52
    if -_TWO52 < a < 0.0:
        return -((_TWO52 - a) - _TWO52)
    return a if a == a else a + a  # ±0, inf, integral values, NaN (quieted)


def f64_sqrt(a: float) -> float:
    """f64.sqrt (a negative operand gives the canonical NaN; math.sqrt would raise)."""
    try:
        return _sqrt(a)
    except ValueError:
        return _NAN


def f64_add(a: float, b: float) -> float:
    """f64.add."""
    return a + b


def f64_sub(a: float, b: float) -> float:
    """f64.sub."""
    return a - b


def f64_mul(a: float, b: float) -> float:
    """f64.mul."""
    return a * b


def f64_div(a: float, b: float) -> float:
    """f64.div (division by zero gives ±inf or NaN as in IEEE 754)."""
    try:
        return a / b
    except ZeroDivisionError:
        if a != a:
            return a + b  # NaN / 0: that NaN, quieted
        if a == 0.0:
            return _NAN  # 0 / 0
        return _copysign(_INF, a) * _copysign(1.0, b)


def f64_min(a: float, b: float) -> float:
    """f64.min: NaN if either is NaN; -0 is less than +0."""
    if a < b:
        return a
    if b < a:
        return b
    if a == b:
        # Equal non-zero values are identical. For zeros, -(-a - b) is -0 unless both are +0.
        return a if a else -(-a - b)
    return a + b  # a NaN operand: the sum is a NaN operand quieted (spec 4.3.3)


def f64_max(a: float, b: float) -> float:
    """f64.max: NaN if either is NaN; +0 is greater than -0."""
    if a > b:
        return a
    if b > a:
        return b
    if a == b:
        return a if a else a + b  # for zeros, a + b is +0 unless both are -0
    return a + b


# --- Integer conversions -----------------------------------------------------------------------


def i32_wrap_i64(a: int) -> int:
    """i32.wrap_i64."""
    return a & MASK32


def i64_extend_i32_s(a: int) -> int:
    """i64.extend_i32_s."""
    return ((a ^ _S32) - _S32) & MASK64


def i64_extend_i32_u(a: int) -> int:
    """i64.extend_i32_u."""
    return a


def i32_extend8_s(a: int) -> int:
    """i32.extend8_s."""
    return (((a & 0xFF) ^ 0x80) - 0x80) & MASK32


def i32_extend16_s(a: int) -> int:
    """i32.extend16_s."""
    return (((a & 0xFFFF) ^ 0x8000) - 0x8000) & MASK32


def i64_extend8_s(a: int) -> int:
    """i64.extend8_s."""
    return (((a & 0xFF) ^ 0x80) - 0x80) & MASK64


def i64_extend16_s(a: int) -> int:
    """i64.extend16_s."""
    return (((a & 0xFFFF) ^ 0x8000) - 0x8000) & MASK64


def i64_extend32_s(a: int) -> int:
    """i64.extend32_s."""
    return (((a & MASK32) ^ _S32) - _S32) & MASK64


# --- Float -> integer truncation (spec 4.3.4 trunc, trunc_sat) ---------------------------------
# An operand is in range iff trunc(x) fits, i.e. lo < x < hi with lo = INT_MIN - 1 and
# hi = INT_MAX + 1 (unsigned: lo = -1). All these bounds are exact doubles except
# -2**63 - 1; the next double below -2**63 is -2**63 - 2048, so ``-2**63 <= x`` is the same test.
# f32 operands have the same bounds (every f32 is a double). int(x) truncates toward zero.
_LO32S, _HI32S = -2147483649.0, 2147483648.0
_LO32U, _HI32U = -1.0, 4294967296.0
_LO64S, _HI64S = -9223372036854775808.0, 9223372036854775808.0
_LO64U, _HI64U = -1.0, 18446744073709551616.0


def _trunc_trap(x: float) -> Trap:
    return Trap(_BAD_CONV if x != x else _OVERFLOW)


def i32_trunc_f64_s(a: float) -> int:
    """i32.trunc_f64_s: traps on NaN and out-of-range values."""
    if _LO32S < a < _HI32S:
        return int(a) & MASK32
    raise _trunc_trap(a)


def i32_trunc_f64_u(a: float) -> int:
    """i32.trunc_f64_u."""
    if _LO32U < a < _HI32U:
        return int(a)
    raise _trunc_trap(a)


def i64_trunc_f64_s(a: float) -> int:
    """i64.trunc_f64_s."""
    if _LO64S <= a < _HI64S:
        return int(a) & MASK64
    raise _trunc_trap(a)


def i64_trunc_f64_u(a: float) -> int:
    """i64.trunc_f64_u."""
    if _LO64U < a < _HI64U:
        return int(a)
    raise _trunc_trap(a)


def i32_trunc_f32_s(a: int) -> int:
    """i32.trunc_f32_s."""
    _U32[0] = a
    x = _F32[0]
    if _LO32S < x < _HI32S:
        return int(x) & MASK32
    raise _trunc_trap(x)


def i32_trunc_f32_u(a: int) -> int:
    """i32.trunc_f32_u."""
    _U32[0] = a
    x = _F32[0]
    if _LO32U < x < _HI32U:
        return int(x)
    raise _trunc_trap(x)


def i64_trunc_f32_s(a: int) -> int:
    """i64.trunc_f32_s."""
    _U32[0] = a
    x = _F32[0]
    if _LO64S <= x < _HI64S:
        return int(x) & MASK64
    raise _trunc_trap(x)


def i64_trunc_f32_u(a: int) -> int:
    """i64.trunc_f32_u."""
    _U32[0] = a
    x = _F32[0]
    if _LO64U < x < _HI64U:
        return int(x)
    raise _trunc_trap(x)


# Saturating truncation: NaN -> 0, out-of-range -> the nearest bound.


def i32_trunc_sat_f64_s(a: float) -> int:
    """i32.trunc_sat_f64_s."""
    if _LO32S < a < _HI32S:
        return int(a) & MASK32
    if a != a:
        return 0
    return _S32 if a < 0.0 else 0x7FFFFFFF


def i32_trunc_sat_f64_u(a: float) -> int:
    """i32.trunc_sat_f64_u."""
    if _LO32U < a < _HI32U:
        return int(a)
    if a != a or a < 0.0:
        return 0
    return MASK32


def i64_trunc_sat_f64_s(a: float) -> int:
    """i64.trunc_sat_f64_s."""
    if _LO64S <= a < _HI64S:
        return int(a) & MASK64
    if a != a:
        return 0
    return _S64 if a < 0.0 else 0x7FFFFFFFFFFFFFFF


def i64_trunc_sat_f64_u(a: float) -> int:
    """i64.trunc_sat_f64_u."""
    if _LO64U < a < _HI64U:
        return int(a)
    if a != a or a < 0.0:
        return 0
    return MASK64


def i32_trunc_sat_f32_s(a: int) -> int:
    """i32.trunc_sat_f32_s."""
    _U32[0] = a
    return i32_trunc_sat_f64_s(_F32[0])


def i32_trunc_sat_f32_u(a: int) -> int:
    """i32.trunc_sat_f32_u."""
    _U32[0] = a
    return i32_trunc_sat_f64_u(_F32[0])


def i64_trunc_sat_f32_s(a: int) -> int:
    """i64.trunc_sat_f32_s."""
    _U32[0] = a
    return i64_trunc_sat_f64_s(_F32[0])


def i64_trunc_sat_f32_u(a: int) -> int:
    """i64.trunc_sat_f32_u."""
    _U32[0] = a
    return i64_trunc_sat_f64_u(_F32[0])


# --- Integer -> float conversion (spec 4.3.4 convert) ------------------------------------------
# int -> double (float(n), or a memoryview store of an int) is correctly rounded in CPython and
# exact below 2**53, so i32 -> f32 rounds once. An i64 above 2**53 would round twice (to double,
# then to f32), which can be off by one ulp at ties; round to odd at 53 bits first instead:
# truncate and set the lowest bit if anything was cut off. Rounding that to nearest f32 is
# then correct because 53 >= 24 + 2 (Boldo & Melquiond, "Emulation of FMA and correctly
# rounded sums: proved algorithms using rounding to odd").


def f32_convert_i32_s(a: int) -> int:
    """f32.convert_i32_s."""
    _F32[0] = (a ^ _S32) - _S32
    return _U32[0]


def f32_convert_i32_u(a: int) -> int:
    """f32.convert_i32_u."""
    _F32[0] = a
    return _U32[0]


def _odd53(m: int) -> float:
    """m >= 2**53 rounded to odd at 53 significant bits (exactly representable)."""
    s = m.bit_length() - 53
    top = m >> s
    if m & ((1 << s) - 1):
        top |= 1
    return float(top << s)


def f32_convert_i64_s(a: int) -> int:
    """f32.convert_i64_s, correctly rounded."""
    n = (a ^ _S64) - _S64
    if -9007199254740992 <= n <= 9007199254740992:
        _F32[0] = n
    elif n > 0:
        x = _odd53(n)  # call before the store: the store and the read stay adjacent
        _F32[0] = x
    else:
        x = -_odd53(-n)
        _F32[0] = x
    return _U32[0]


def f32_convert_i64_u(a: int) -> int:
    """f32.convert_i64_u, correctly rounded."""
    if a <= 9007199254740992:
        _F32[0] = a
    else:
        x = _odd53(a)
        _F32[0] = x
    return _U32[0]


def f64_convert_i32_s(a: int) -> float:
    """f64.convert_i32_s (exact)."""
    return float((a ^ _S32) - _S32)


def f64_convert_i32_u(a: int) -> float:
    """f64.convert_i32_u (exact)."""
    return float(a)


def f64_convert_i64_s(a: int) -> float:
    """f64.convert_i64_s (CPython's int -> float is correctly rounded, half to even)."""
    return float((a ^ _S64) - _S64)


def f64_convert_i64_u(a: int) -> float:
    """f64.convert_i64_u."""
    return float(a)


# --- Float <-> float and reinterpretations -----------------------------------------------------


def f32_demote_f64(a: float) -> int:
    """f32.demote_f64: round to nearest; a NaN stays a NaN, quieted (spec 4.3.4 demote)."""
    if a != a:
        # Spec: demote(nan) = nans{z}, so canonical stays canonical and any other NaN must be an
        # arithmetic (quiet) NaN; keep the sign and the payload's top bits.
        return float_to_f32(a) | _F32_QUIET
    _F32[0] = a
    return _U32[0]


def f64_promote_f32(a: int) -> float:
    """f64.promote_f32: exact; a NaN keeps its payload and is quieted (spec 4.3.4 promote)."""
    _U32[0] = a
    x = _F32[0]
    # The float -> double conversion already quiets NaNs in hardware; x + x makes sure of it on
    # a Python whose conversion preserves signalling NaNs.
    return x if x == x else x + x


def i32_reinterpret_f32(a: int) -> int:
    """i32.reinterpret_f32 (f32 values are their bits already)."""
    return a


def f32_reinterpret_i32(a: int) -> int:
    """f32.reinterpret_i32."""
    return a


def i64_reinterpret_f64(a: float) -> int:
    """i64.reinterpret_f64."""
    return f64_to_bits(a)


def f64_reinterpret_i64(a: int) -> float:
    """f64.reinterpret_i64."""
    return bits_to_f64(a)


# --- The table ---------------------------------------------------------------------------------


def _is_scalar_numeric(code: int) -> bool:
    """The opcodes this module implements: 0x45 (i32.eqz) .. 0xC4 (i64.extend32_s), 0xFC00 .. 0xFC07."""
    return 0x45 <= code <= 0xC4 or 0xFC0000 <= code <= 0xFC0007


def _collect() -> dict[str, Callable[..., Any]]:
    namespace = globals()
    # A missing function is a KeyError at import, not a silently absent entry.
    return {op.ident: namespace[op.ident] for op in OPS if _is_scalar_numeric(op.code)}


FUNCS: dict[str, Callable[..., Any]] = _collect()
