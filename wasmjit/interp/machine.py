"""The interpreter's entry: install a function's tier slot, run its closure code, count.

``install(func)`` points ``func.call`` at a stub that translates the function on its first
call and then replaces itself with the real entry. The entry counts the call, enforces the
call-depth limit ("call stack exhausted"), runs ``pc = code[pc](R)`` until pc 0, and on a trap
adds this activation to the trap's wasm backtrace. Imports: errors, runtime, interp.translate.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from ..errors import Frame, Trap, TrapCode
from ..runtime.store import WasmFunction
from .translate import InterpCode, Translator

HotHook = Callable[[WasmFunction], None]


def install(func: WasmFunction, hot: HotHook | None = None, calls: int = 0, loops: int = 0) -> None:
    """Make ``func`` run in the interpreter (translated lazily on its first call). With ``hot``,
    an entry after ``calls`` entries or ``loops`` loop back-edges calls ``hot(func)`` first (the
    tiered policy compiles it there and replaces ``func.call``)."""

    def translate_then_call(args: list) -> list:
        enter(func, hot, calls, loops)
        return func.call(args)

    func.call = translate_then_call
    func.tier = "interp"


def translate(func: WasmFunction) -> InterpCode:
    """Translate ``func`` (once) and remember the time it took."""
    if func.code is None:
        start = time.perf_counter()
        func.code = Translator(func).run()
        func.code.translate_seconds = time.perf_counter() - start
    return func.code


def enter(func: WasmFunction, hot: HotHook | None = None, calls: int = 0, loops: int = 0) -> None:
    """Set ``func.call`` to the interpreter entry for its translated code."""
    code = translate(func)
    func.call = make_entry(func, code, hot, calls, loops)
    func.tier = "interp"


def make_entry(func: WasmFunction, code: InterpCode, hot: HotHook | None = None, calls: int = 0,
               loops: int = 0):  # noqa: ANN201 - a closure
    """The function's interpreter entry: ``entry(args) -> results`` (it may consume ``args``)."""
    store = func.store
    handlers = code.code
    template = code.frame_template
    first, last = code.num_locals, code.num_locals + len(func.type.results)
    backedges = func.backedges

    def interp_entry(args: list) -> list:
        if hot is not None and (func.entries >= calls or backedges[0] >= loops):
            hot(func)
            if func.call is not interp_entry:
                return func.call(args)
        depth = store.depth + 1
        if depth > store.max_call_depth:
            raise Trap(TrapCode.STACK_OVERFLOW)
        func.entries += 1
        store.depth = depth
        R = args
        R.extend(template)
        pc = 1
        try:
            while pc:
                pc = handlers[pc](R)
        except Trap as trap:
            trap.frames.append(frame(func, code, pc))
            raise
        finally:
            store.depth = depth - 1
        return R[first:last]

    return interp_entry


def frame(func: WasmFunction, code: InterpCode, pc: int) -> Frame:
    """The backtrace frame of ``func`` stopped at ``pc``."""
    offset = code.offsets[pc]
    body_start = func.instance.module.funcs[func.index - func.instance.vmod.num_imported_funcs].code.offset
    return Frame(func.index, func.name, func.instance.name, offset - body_start, offset)
