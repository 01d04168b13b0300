"""The tiered policy: interpret first, compile a function to native code once it is hot.

A function tiers up at an entry, once the interpreter has counted ``TIER_UP_CALLS`` entries or
``TIER_UP_LOOPS`` loop back-edges for it (one table of parameters; ``Config`` can override them,
e.g. 1 and 1 in tests so every function tiers up on its first call). Compiling patches the
function's code slot, so native callers switch at once, and its ``call``, so interpreted callers
and the host do too. A function the JIT cannot compile stays in the interpreter (``tier`` is then
"interp" and the failure is kept in ``compile_error``). A loop that gets hot while its function runs
in the interpreter moves to native code at once (on-stack replacement, :func:`osr`).

With ``verify`` (verify-before-install, :mod:`.verify`), the interpreter records each function's
last arguments, and new code is installed only after it agreed with the interpreter on them and
on edge values; a function that fails keeps interpreting (its ``compile_error`` is the
VerificationError) and a warning names it. On-stack replacement then waits for the function to
pass. While a store verifies, nothing in it tiers up. Imports: interp, jit.native, jit.verify,
runtime.store.
"""

from __future__ import annotations

import warnings
from collections import deque
from functools import partial

from ..interp import machine
from ..interp.translate import InterpCode
from ..runtime.store import WasmFunction
from . import verify as V
from .native import compile_function, compile_osr

TIER_UP_CALLS = 50  # interpreted entries before a function is compiled
TIER_UP_LOOPS = 2000  # ... or loop back-edges taken in it


class VerificationWarning(UserWarning):
    """A function's native code disagreed with the interpreter and was not installed."""


def install(func: WasmFunction, calls: int = TIER_UP_CALLS, loops: int = TIER_UP_LOOPS,
            verify: bool = False) -> None:
    """Run ``func`` in the interpreter until it is hot (on-stack replacement included)."""
    if verify:
        recent: deque = deque(maxlen=V.RECENT_CALLS)
        machine.install(func, partial(tier_up, recent=recent), calls, loops, partial(osr, recent=recent),
                        recent)
    else:
        machine.install(func, tier_up, calls, loops, osr)


def tier_up(func: WasmFunction, recent: deque | None = None) -> None:
    """Compile ``func`` (verified first when ``recent`` is given); if that fails, keep
    interpreting it without asking again."""
    if id(func.store) in V._Session.active:
        return  # another function of this store is being verified: not now
    check = None
    if recent is not None:
        def check(f: WasmFunction, entry: int) -> None:
            f.verify_report = V.verify(f, entry, list(recent))
    try:
        compile_function(func, check=check)
    except Exception as err:  # noqa: BLE001 - any compiler failure leaves the function interpreted
        func.compile_error = err
        if isinstance(err, V.VerificationError):
            warnings.warn(f"wasmjit: {err}; it stays in the interpreter", VerificationWarning,
                          stacklevel=2)
        machine.enter(func)


def osr(func: WasmFunction, code: InterpCode, header: int, frame: list,
        recent: deque | None = None) -> list | None:
    """On-stack replacement: a loop of ``func`` got hot while it runs in the interpreter. Compile
    the function with an entry at that loop's header, move the interpreter's locals there, and let
    native code finish the call (its results are returned). None keeps interpreting: the loop is
    not at an empty operand stack, or the compiler failed. The whole function is compiled too,
    for its next calls (first, and verified, when ``recent`` is given: no verified code, no OSR)."""
    loop = code.loop_headers.get(header)
    if loop is None or func.info.heights[loop] != 0 or id(func.store) in V._Session.active:
        return None
    if recent is not None:
        tier_up(func, recent)
        if func.tier != "jit":
            return None
    try:
        native = compile_osr(func, loop)
    except Exception as err:  # noqa: BLE001 - any compiler failure leaves the loop interpreted
        func.compile_error = err
        return None
    if recent is None:
        tier_up(func)
    return native(frame[:code.num_locals])
