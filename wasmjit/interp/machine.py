"""The interpreter's entry: install a function's tier slot, run its closure code, count.

``install(func)`` points ``func.call`` at a stub that translates the function on its first
call and then replaces itself with the real entry. The entry counts the call, enforces the
call-depth limit ("call stack exhausted"), runs ``pc = code[pc](R)`` until pc 0, and on a trap
adds this activation to the trap's wasm backtrace. Imports: errors, runtime, interp.translate.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from ..errors import Frame, Trap, TrapCode
from ..runtime.store import WasmFunction
from .templates import OsrRequest
from .translate import InterpCode, Translator

HotHook = Callable[[WasmFunction], None]
# (function, its translated code, the loop header's pc, the frame) -> results, or None to go on
OsrHook = Callable[[WasmFunction, "InterpCode", int, list], "list | None"]
# A frame of more slots than this counts as several calls against the call-depth limit: 10,000
# recursive calls of a function with 50,000 locals would otherwise hold 4 GB of frames.
SLOTS_PER_DEPTH = 1024


def install(func: WasmFunction, hot: HotHook | None = None, calls: int = 0, loops: int = 0,
            osr: OsrHook | None = None, record: deque | None = None) -> None:
    """Make ``func`` run in the interpreter (translated lazily on its first call). With ``hot``,
    an entry after ``calls`` entries or ``loops`` loop back-edges calls ``hot(func)`` first (the
    tiered policy compiles it there and replaces ``func.call``). With ``osr``, the back-edge that
    makes the count reach ``loops`` asks ``osr`` to finish the call in native code. With
    ``record`` (a bounded deque), each entry appends a copy of its arguments (the inputs
    verify-before-install replays)."""
    if osr is not None:
        func.backedges[1] = loops

    def translate_then_call(args: list) -> list:
        enter(func, hot, calls, loops, osr, record)
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


def enter(func: WasmFunction, hot: HotHook | None = None, calls: int = 0, loops: int = 0,
          osr: OsrHook | None = None, record: deque | None = None) -> None:
    """Set ``func.call`` to the interpreter entry for its translated code."""
    code = translate(func)
    func.call = make_entry(func, code, hot, calls, loops, osr, record)
    func.tier = "interp"


def make_entry(func: WasmFunction, code: InterpCode, hot: HotHook | None = None, calls: int = 0,
               loops: int = 0, osr: OsrHook | None = None,
               record: deque | None = None):  # noqa: ANN201 - a closure
    """The function's interpreter entry: ``entry(args) -> results`` (it may consume ``args``)."""
    store = func.store
    handlers = code.code
    template = code.frame_template
    first, last = code.num_locals, code.num_locals + len(func.type.results)
    backedges = func.backedges
    weight = 1 + len(template) // SLOTS_PER_DEPTH  # this frame's share of the call-depth limit

    def interp_entry(args: list) -> list:
        if hot is not None and (func.entries >= calls or backedges[0] >= loops):
            hot(func)
            if func.call is not interp_entry:
                return func.call(args)
        depth = store.depth + weight
        if depth > store.max_call_depth:
            raise Trap(TrapCode.STACK_OVERFLOW)
        func.entries += 1
        store.depth = depth
        if record is not None:
            record.append(args.copy())
        R = args
        R.extend(template)
        pc = 1
        try:
            while pc:
                try:
                    while pc:
                        pc = handlers[pc](R)
                except OsrRequest as request:  # a loop got hot: maybe finish in native code
                    backedges[1] = 0  # ask once
                    pc = 0  # native code continues this activation: its frame is in a trap's backtrace
                    results = osr(func, code, request.target, R) if osr is not None else None
                    if results is not None:
                        return results
                    pc = request.target
        except Trap as trap:
            store.after_trap(trap.trap_code)
            if pc:
                trap.frames.append(frame(func, code, pc))
            raise
        finally:
            store.depth = depth - weight
        return R[first:last]

    return interp_entry


def frame(func: WasmFunction, code: InterpCode, pc: int) -> Frame:
    """The backtrace frame of ``func`` stopped at ``pc``."""
    offset = code.offsets[pc]
    body_start = func.instance.module.funcs[func.index - func.instance.vmod.num_imported_funcs].code.offset
    return Frame(func.index, func.name, func.instance.name, offset - body_start, offset)
