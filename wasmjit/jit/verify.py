"""Verify-before-install: new native code must agree with the interpreter before callers use it.

With ``Config.verify`` (CLI ``--verify``), a function that gets hot is compiled as usual, but before
its code slot is patched the new code runs under Unicorn (:mod:`.emulate`) on a handful of inputs
and the interpreter runs on the same inputs from the same state. The inputs are the arguments of
its last few real calls (the interpreter records them) and edge values per parameter type (0, 1,
-1, min, max; for floats ±0, ±inf, NaN, the extremes), one input per edge value. Compared, after
each input: the results (bit for bit; any NaN matches any NaN, as wasm lets NaN payloads vary),
the trap code or error, and the whole state the function can change: every linear memory (size
and bytes), global and table of the store, and dropped segments. Any difference raises
:class:`VerificationError` and the function stays in the interpreter.

Each run starts from a snapshot of that state and the state is put back afterwards, so the program
sees neither run. Inputs that cannot be compared safely are skipped ("inconclusive"): a run that
calls a host function (its effects — output, files — cannot be undone or replayed), and runs over
the time budget (the emulation is bounded by Unicorn's timeout, the interpreter by a watchdog
thread). Other functions the verified one calls keep their current tier; it calls itself through
the new code. Imports: errors, runtime, interp, jit.native, jit.emulate.
"""

from __future__ import annotations

import ctypes
import math
import struct
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import Trap, WasmjitError
from ..interp import machine
from ..runtime.store import HostFunction, WasmFunction
from . import native
from .emulate import EmulationError, EmulationTimeout, Emulator

RECENT_CALLS = 3  # recorded arguments per function (the newest)
EMULATION_BUDGET = 0.5  # seconds per emulated run
INTERP_BUDGET = 5.0  # seconds per interpreted run

_EDGES = {
    "i32": (0, 1, 0xFFFFFFFF, 0x80000000, 0x7FFFFFFF),
    "i64": (0, 1, (1 << 64) - 1, 1 << 63, (1 << 63) - 1),
    # f32 values are raw bits in the interpreter: +0, -0, 1.0, NaN, +inf, -inf, max, min subnormal
    "f32": (0, 0x80000000, 0x3F800000, 0x7FC00000, 0x7F800000, 0xFF800000, 0x7F7FFFFF, 1),
    "f64": (0.0, -0.0, 1.0, math.nan, math.inf, -math.inf, 1.7976931348623157e308, 5e-324),
}


class VerificationError(WasmjitError):
    """Native code and the interpreter disagreed on an input: the code is not installed."""


@dataclass
class VerifyReport:
    """What verifying one function did (kept on the function as ``verify_report``)."""

    inputs: int = 0  # compared
    inconclusive: int = 0  # skipped: host calls or over budget
    seconds: float = 0.0
    mismatch: str | None = None
    notes: list[str] = field(default_factory=list)


class _Inconclusive(BaseException):
    """Abandon this input (a BaseException so no wasm-level handler swallows it)."""


def edge_inputs(params: tuple[str, ...]) -> list[list[Any]]:
    """One input per edge value: every parameter takes its type's k-th edge value (references
    are null)."""
    if not params:
        return [[]]
    count = max(len(_EDGES.get(t, (0,))) for t in params)
    out = []
    for k in range(count):
        values = [_EDGES.get(t, (0,)) for t in params]
        out.append([v[k % len(v)] for v in values])
    return out


def verify(func: WasmFunction, entry: int, recent: Iterable[list[Any]] = ()) -> VerifyReport:
    """Compare the native code at ``entry`` (compiled for ``func``, not installed) with the
    interpreter; raises VerificationError on a difference."""
    start = time.perf_counter()
    report = VerifyReport()
    inputs: list[list[Any]] = []
    for args in [*recent, *edge_inputs(func.type.params)]:
        if args not in inputs:
            inputs.append(list(args))
    with _Session(func, entry) as session:
        for args in inputs:
            outcome = session.compare(args)
            if outcome is None:
                report.inconclusive += 1
                continue
            report.inputs += 1
            if outcome:
                report.mismatch = f"{_name(func)}{tuple(args)}: {outcome}"
                break
    report.seconds = time.perf_counter() - start
    if report.mismatch is not None:
        raise VerificationError(f"native code of {_name(func)} disagrees with the interpreter on "
                                f"{report.mismatch}")
    return report


def _name(func: WasmFunction) -> str:
    return func.name or f"func[{func.index}]"


# --- one verification session: state snapshots, the two runs, comparison --------------------------


_F64 = struct.Struct("<d")


def _same(a: Any, b: Any, type_: str) -> bool:
    if type_ == "f64":
        return (math.isnan(a) and math.isnan(b)) or _F64.pack(a) == _F64.pack(b)
    if type_ == "f32":
        return a == b or ((a & 0x7F800000) == 0x7F800000 and a & 0x7FFFFF != 0
                          and (b & 0x7F800000) == 0x7F800000 and b & 0x7FFFFF != 0)
    return a == b


class _Session:
    """Everything one verification changes and puts back: the VMStore, host functions (which
    abandon the input when called), the function's code slot, and the store's wasm state."""

    active: set[int] = set()  # ids of stores being verified (the tier policy waits meanwhile)

    def __init__(self, func: WasmFunction, entry: int) -> None:
        self.func, self.entry = func, entry
        self.store = store = func.store
        self.state = native.native_store(store)
        if self.state.verifier is None:
            self.state.verifier = Emulator(self.state, self.state.py_callbacks)
        self.emulator: Emulator = self.state.verifier
        self.emulated = native._make_entry(func, self.state, entry, func.type.params, self.emulator.enter)
        self.interpreted = machine.make_entry(func, machine.translate(func))
        self.results = func.type.results
        self.native_fuel = 0  # fuel left after the last emulated run (Config.consume_fuel)

    def __enter__(self) -> _Session:
        store, vm = self.store, self.store.vm
        self.vm_bytes = ctypes.string_at(ctypes.addressof(vm), ctypes.sizeof(vm))
        self.counts = (self.func.entries, list(self.func.backedges))
        self.hosts = [(f, f.call) for f in store.funcs if isinstance(f, HostFunction)]
        for host, _ in self.hosts:
            host.call = _host_called
        _Session.active.add(id(store))
        return self

    def __exit__(self, *exc: object) -> None:
        for host, call in self.hosts:
            host.call = call
        _Session.active.discard(id(self.store))
        vm = self.store.vm
        ctypes.memmove(ctypes.addressof(vm), self.vm_bytes, len(self.vm_bytes))
        self.func.entries, self.func.backedges[:] = self.counts[0], self.counts[1]

    def compare(self, args: list[Any]) -> str | None:
        """'' when both runs agree, a description when they differ, None when inconclusive."""
        snapshot = _Snapshot(self.store)
        try:
            native_out = self._run_emulated(args)
            native_state = snapshot.capture()
        finally:
            snapshot.restore(self.emulator)
        if native_out is None:
            return None
        vm = self.store.vm
        try:
            interp_out = _with_budget(lambda: self._outcome(self.interpreted, args), INTERP_BUDGET)
            interp_state = snapshot.capture()
            interp_fuel = vm.fuel
        finally:
            snapshot.restore(self.emulator)
            ctypes.memmove(ctypes.addressof(vm), self.vm_bytes, len(self.vm_bytes))
        if interp_out is None:
            return None
        if not self._same_outcome(native_out, interp_out):
            return f"native {_show(native_out)}, interpreter {_show(interp_out)}"
        if self.store.consume_fuel and self.native_fuel != interp_fuel:
            return f"fuel left is {self.native_fuel} natively, {interp_fuel} interpreted"
        return snapshot.difference(native_state, interp_state)

    def _run_emulated(self, args: list[Any]) -> tuple | None:
        vm, code = self.store.vm, self.store.func_arrays.code
        handle = self.func.handle
        vm.host_callback, vm.helper_callback, vm.trap_callback = self.emulator.routines.pads
        vm.saved_rsp = 0  # the emulated entry is an outermost one: its own stack and stack limit
        slot = code[handle]
        code[handle] = self.entry  # recursive calls run the new code too
        self.emulator.timeout = EMULATION_BUDGET
        try:
            return self._outcome(self.emulated, args)
        finally:
            code[handle] = slot
            self.native_fuel = vm.fuel
            ctypes.memmove(ctypes.addressof(vm), self.vm_bytes, len(self.vm_bytes))

    @staticmethod
    def _outcome(call: Callable[[list], list], args: list[Any]) -> tuple | None:
        try:
            return ("results", call(list(args)))
        except (_Inconclusive, EmulationTimeout):
            return None
        except Trap as trap:
            return ("trap", trap.trap_code.name if trap.trap_code is not None else trap.message)
        except EmulationError as err:
            return ("emulation error", str(err))
        except Exception as err:  # noqa: BLE001 - an engine error is an outcome to compare
            return ("error", type(err).__name__)

    def _same_outcome(self, a: tuple, b: tuple) -> bool:
        if a[0] != b[0]:
            return False
        if a[0] != "results":
            return a[1] == b[1]
        if len(a[1]) != len(b[1]):
            return False
        return all(_same(x, y, t) for x, y, t in zip(a[1], b[1], self.results, strict=True))


def _show(outcome: tuple) -> str:
    if outcome[0] == "results":
        return f"returned {outcome[1]}"
    return f"{outcome[0]} {outcome[1]}"


def _host_called(args: list) -> list:
    raise _Inconclusive


def _with_budget(run: Callable[[], Any], seconds: float) -> Any:
    """``run()``, or None when it takes longer than ``seconds`` (a watchdog thread raises an
    asynchronous exception in this thread; pure-Python code such as the interpreter sees it at
    its next bytecode)."""
    target = threading.get_ident()
    lock = threading.Lock()
    armed = [True]

    def expire() -> None:
        with lock:
            if armed[0]:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(target),
                                                           ctypes.py_object(_Inconclusive))

    timer = threading.Timer(seconds, expire)
    timer.start()
    try:
        result = run()
        with lock:
            armed[0] = False
        return result
    except _Inconclusive:
        return None
    finally:
        with lock:
            armed[0] = False
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(target), None)  # a late one
        timer.cancel()


class _Snapshot:
    """The wasm-visible state of a store: memories, globals, tables, segments."""

    def __init__(self, store: Any) -> None:
        mems, globs, tables, insts = {}, {}, {}, []
        for inst in store.instances:
            insts.append((inst, list(inst.datas), list(inst.elems)))
            for mem in inst.mems:
                mems[id(mem)] = mem
            for glob in inst.globals:
                globs[id(glob)] = glob
            for table in inst.tables:
                tables[id(table)] = table
        self.mems, self.globals = list(mems.values()), list(globs.values())
        self.tables = list(tables.values())
        self.insts = insts
        self.saved = self.capture()

    def capture(self) -> tuple:
        return ([(m.pages, bytes(m.view)) for m in self.mems],
                [g.cell.tobytes() for g in self.globals],
                [t.elements.tobytes() for t in self.tables],
                [(list(i.datas), list(i.elems)) for i, _, _ in self.insts])

    def restore(self, emulator: Emulator) -> None:
        mems, globs, tables, _ = self.saved
        for mem, (pages, data) in zip(self.mems, mems, strict=True):
            mem.restore(pages, data)
            emulator.forget_memory(mem.base, mem.size)
        for glob, raw in zip(self.globals, globs, strict=True):
            glob.cell[:] = type(glob.cell)(glob.cell.typecode, raw)
        for table, raw in zip(self.tables, tables, strict=True):
            table.elements[:] = type(table.elements)("Q", raw)
            table._sync()
        for inst, datas, elems in self.insts:
            inst.datas[:], inst.elems[:] = datas, elems

    def difference(self, a: tuple, b: tuple) -> str:
        """'' or where the native state ``a`` differs from the interpreter's ``b``."""
        for i, ((pa, da), (pb, db)) in enumerate(zip(a[0], b[0], strict=True)):
            if pa != pb:
                return f"memory {i} has {pa} pages natively, {pb} interpreted"
            if da != db:
                at = next(k for k in range(len(da)) if da[k] != db[k])
                return f"memory {i} byte {at:#x} is {da[at]:#04x} natively, {db[at]:#04x} interpreted"
        for glob, ga, gb in zip(self.globals, a[1], b[1], strict=True):
            if ga != gb and not _same(*(type(glob.cell)(glob.cell.typecode, g)[0] for g in (ga, gb)),
                                      glob.type.valtype):
                return f"a global is {ga.hex()} natively, {gb.hex()} interpreted"
        if a[2] != b[2]:
            return "a table differs"
        if a[3] != b[3]:
            return "dropped segments differ"
        return ""
