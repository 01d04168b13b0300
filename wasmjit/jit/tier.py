"""The tiered policy: interpret first, compile a function to native code once it is hot.

A function tiers up at an entry, once the interpreter has counted ``TIER_UP_CALLS`` entries or
``TIER_UP_LOOPS`` loop back-edges for it (one table of parameters; ``Config`` can override them,
e.g. 1 and 1 in tests so every function tiers up on its first call). Compiling patches the
function's code slot, so native callers switch at once, and its ``call``, so interpreted callers
and the host do too. A function the JIT cannot compile stays in the interpreter (``tier`` is then
"interp" and the failure is kept in ``compile_error``). A loop that gets hot while its function runs
in the interpreter moves to native code at once (on-stack replacement, :func:`osr`).
Imports: interp, jit.native, runtime.store.
"""

from __future__ import annotations

from ..interp import machine
from ..interp.translate import InterpCode
from ..runtime.store import WasmFunction
from .native import compile_function, compile_osr

TIER_UP_CALLS = 50  # interpreted entries before a function is compiled
TIER_UP_LOOPS = 2000  # ... or loop back-edges taken in it


def install(func: WasmFunction, calls: int = TIER_UP_CALLS, loops: int = TIER_UP_LOOPS) -> None:
    """Run ``func`` in the interpreter until it is hot (on-stack replacement included)."""
    machine.install(func, tier_up, calls, loops, osr)


def tier_up(func: WasmFunction) -> None:
    """Compile ``func``; if that fails, keep interpreting it without asking again."""
    try:
        compile_function(func)
    except Exception as err:  # noqa: BLE001 - any compiler failure leaves the function interpreted
        func.compile_error = err
        machine.enter(func)


def osr(func: WasmFunction, code: InterpCode, header: int, frame: list) -> list | None:
    """On-stack replacement: a loop of ``func`` got hot while it runs in the interpreter. Compile
    the function with an entry at that loop's header, move the interpreter's locals there, and let
    native code finish the call (its results are returned). None keeps interpreting: the loop is
    not at an empty operand stack, or the compiler failed. The whole function is compiled too,
    for its next calls."""
    loop = code.loop_headers.get(header)
    if loop is None or func.info.heights[loop] != 0:
        return None
    try:
        native = compile_osr(func, loop)
    except Exception as err:  # noqa: BLE001 - any compiler failure leaves the loop interpreted
        func.compile_error = err
        return None
    tier_up(func)
    return native(frame[:code.num_locals])
