"""Running native code: the shared entry/exit routines, calls back into Python, traps, backtraces,
and installing a function's code in its store's code slot.

Compiling gives store-independent relocatable code (:mod:`.artifact`), which the module keeps for
all its instances; installing copies it into code memory with the store's and instance's values
patched in (:func:`compile_function`), whether it was compiled just now, by an earlier
instantiation, or came from ``Module.deserialize``.

Shared routines (assembled once per process, see :func:`routines`):

- ``entry(vmctx, code, buffer, nslots) -> trap code``, called through ctypes: saves the C
  callee-saved registers, remembers the previous ``VMStore.saved_rsp`` and sets its own (the
  unwind target), sets the stack limit on the outermost entry, copies ``nslots`` raw argument
  slots from ``buffer`` to its outgoing area and calls ``code``. On return it copies the slots
  back (extra results live there), stores rax and xmm0 after them and returns 0.
- ``trap_exit``: where every unwind lands (rsp = saved_rsp); returns ``VMStore.trap_code``.
- ``trap_routine``: called by a function's trap stub with the code in r11d and the wasm offset in
  r10d; records code, offset, pc and rbp in the VMStore and unwinds.
- ``host_call``: the code-slot value of every function that is not native. It calls the store's
  host callback (C ABI: vmctx, handle in r11, address of the argument slots, rbp), which runs the
  function in Python (interpreter or host); if that failed it unwinds like a trap.
- ``helper_call``: the same for runtime helpers (memory.grow, bulk memory, table operations).

A Python exception (a trap from the interpreter, an ExitTrap, a host error) crosses native frames
as ``HOST_EXCEPTION``: the callback parks it on the store and native code unwinds to the entry,
which re-raises it. Imports: errors, runtime, jit.*.
"""

from __future__ import annotations

import bisect
import ctypes
import struct
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import Frame, Trap, TrapCode, UnsupportedError
from ..runtime import vmctx as V
from ..runtime.store import Store, WasmFunction
from ..validate import ValidatedModule
from ..validate.func import FuncInfo
from . import codegen
from .artifact import CodeKey, FunctionCode, link, module_cache
from .assemble import assemble
from .codemem import cpu_features, default_code_memory
from .lower import lower
from .regalloc import allocate
from .x64 import (
    R10,
    R11,
    R12,
    R13,
    R14,
    R15,
    RAX,
    RBP,
    RBX,
    RCX,
    RDI,
    RDX,
    RSI,
    RSP,
    XMM0,
    Cond,
    Masm,
    Mem,
    Target,
)

_F64 = struct.Struct("<d")

_U64 = ctypes.c_uint64
CALLBACK = ctypes.CFUNCTYPE(_U64, _U64, _U64, _U64, _U64)  # (vmctx, handle or helper, slots, rbp)
ENTRY = ctypes.CFUNCTYPE(_U64, _U64, _U64, ctypes.c_void_p, _U64)  # (vmctx, code, slots, count)


@dataclass(frozen=True)
class Routines:
    entry: Callable[..., int]
    entry_address: int
    trap_routine: int
    host_call: int
    helper_call: int
    trap_exit: int
    # for the unicorn tier: landing pads its stores use as callback addresses (each a ``ret``,
    # hooked by the emulator, never run natively), the address an emulated entry returns to, and
    # the whole block (address, size)
    pads: tuple[int, int, int]
    sentinel: int
    block: tuple[int, int]


_routines: Routines | None = None


def routines() -> Routines:
    """The shared routines, assembled on first use."""
    global _routines
    if _routines is None:
        cpu_features()  # refuse to run on a CPU without what the code generator emits
        _routines = _build_routines()
    return _routines


def _copy_slots(m: Masm, src: Mem, dst: Mem) -> None:
    """Copy rcx 8-byte slots from ``src`` to ``dst`` (both indexed by rax*8); clobbers rax, r10."""
    loop, done = m.new_label("l"), m.new_label("l")
    m.xor(RAX.r32, RAX.r32)
    m.bind(loop)
    m.cmp(RAX, RCX)
    m.jcc(Cond.AE, done)
    m.mov(R10, src)
    m.mov(dst, R10)
    m.add(RAX, 1)
    m.jmp(loop)
    m.bind(done)


def _build_routines() -> Routines:
    m = Masm()
    entry, trap_exit, finish = m.new_label("entry"), m.new_label("exit"), m.new_label("finish")
    trap, host, helper = m.new_label("trap"), m.new_label("host"), m.new_label("helper")
    limit_set = m.new_label("l")
    frame = 72  # rbp - rsp after the pushes below: the unwind target is rbp - 72
    # entry(rdi = vmctx, rsi = code, rdx = slot buffer, rcx = number of slots)
    m.bind(entry)
    m.push(RBP)
    m.mov(RBP, RSP)
    for reg in (RBX, R12, R13, R14, R15):
        m.push(reg)  # [rbp-8] .. [rbp-40]
    m.mov(R15, RDI)
    m.mov(R14, Mem(R15, disp=V.OFFSET_MEMORY_BASE))
    m.mov(R11, Mem(R15, disp=V.OFFSET_STORE))
    m.push(R11)  # [rbp-48] the VMStore
    m.mov(R10, Mem(R11, disp=V.STORE_SAVED_RSP))
    m.push(R10)  # [rbp-56] the previous unwind target
    m.push(RDX)  # [rbp-64] the slot buffer
    m.push(RCX)  # [rbp-72] the slot count
    m.test(R10, R10)
    m.jcc(Cond.NE, limit_set)
    m.mov(R10, RSP)
    m.sub(R10, Mem(R11, disp=V.STORE_STACK_BUDGET))  # Config.max_wasm_stack
    m.mov(Mem(R11, disp=V.STORE_STACK_LIMIT), R10)
    m.bind(limit_set)
    m.mov(Mem(R11, disp=V.STORE_SAVED_RSP), RSP)
    # outgoing area: 8 * nslots rounded up to 16, plus 8 (rsp is 8 mod 16 here): 16-aligned at the call
    m.mov(RAX, RCX)
    m.shl(RAX, 3)
    m.add(RAX, 0x17)
    m.and_(RAX, -16)
    m.sub(RAX, 8)
    m.sub(RSP, RAX)
    _copy_slots(m, Mem(RDX, RAX, 8), Mem(RSP, RAX, 8))
    m.call(RSI)
    m.mov(RDX, Mem(RBP, disp=-64))
    m.mov(RCX, Mem(RBP, disp=-72))
    m.mov(Mem(RDX, RCX, 8), RAX)
    m.movq(Mem(RDX, RCX, 8, disp=8), XMM0)
    _copy_slots(m, Mem(RSP, RAX, 8), Mem(RDX, RAX, 8))
    m.xor(RAX.r32, RAX.r32)
    m.jmp(finish)
    # unwind target: rsp = saved_rsp = rbp - 72
    m.bind(trap_exit)
    m.lea(RBP, Mem(RSP, disp=frame))
    m.mov(R11, Mem(RBP, disp=-48))
    m.mov(RAX.r32, Mem(R11, disp=V.STORE_TRAP_CODE, size=4))
    m.bind(finish)
    m.mov(R11, Mem(RBP, disp=-48))
    m.mov(R10, Mem(RBP, disp=-56))
    m.mov(Mem(R11, disp=V.STORE_SAVED_RSP), R10)
    for offset, reg in ((-8, RBX), (-16, R12), (-24, R13), (-32, R14), (-40, R15)):
        m.mov(reg, Mem(RBP, disp=offset))
    m.mov(RSP, RBP)
    m.pop(RBP)
    m.ret()
    # trap_routine: r11d = trap code, r10d = wasm offset, [rsp] = return address in the stub
    m.bind(trap)
    m.mov(RAX, Mem(R15, disp=V.OFFSET_STORE))
    m.mov(Mem(RAX, disp=V.STORE_TRAP_CODE, size=4), R11.r32)
    m.mov(Mem(RAX, disp=V.STORE_TRAP_OFFSET), R10)
    m.mov(R11, Mem(RSP))
    m.mov(Mem(RAX, disp=V.STORE_TRAP_PC), R11)
    m.mov(Mem(RAX, disp=V.STORE_TRAP_RBP), RBP)
    m.sub(RSP, 8)  # 16-aligned for the C call; the stack is intact for the backtrace
    m.mov(RDI, R15)
    m.xor(RSI.r32, RSI.r32)
    m.xor(RDX.r32, RDX.r32)
    m.mov(RCX, RBP)
    m.call(Mem(RAX, disp=V.STORE_TRAP_CALLBACK))
    m.mov(RAX, Mem(R15, disp=V.OFFSET_STORE))
    m.mov(RSP, Mem(RAX, disp=V.STORE_SAVED_RSP))
    m.jmp(trap_exit)
    # host_call / helper_call: r11 = handle or helper id; arguments at [rsp + 8]
    for label, callback in ((host, V.STORE_HOST_CALLBACK), (helper, V.STORE_HELPER_CALLBACK)):
        unwind = m.new_label("unwind")
        m.bind(label)
        m.push(RBP)
        m.mov(RBP, RSP)
        m.mov(RDI, R15)
        m.mov(RSI, R11)
        m.lea(RDX, Mem(RBP, disp=16))
        m.mov(RCX, RBP)
        m.mov(RAX, Mem(R15, disp=V.OFFSET_STORE))
        m.call(Mem(RAX, disp=callback))
        m.movq(XMM0, RAX)
        m.mov(R11, Mem(R15, disp=V.OFFSET_STORE))
        m.cmp(Mem(R11, disp=V.STORE_TRAP_CODE, size=4), 0)
        m.jcc(Cond.NE, unwind)
        m.pop(RBP)
        m.ret()
        m.bind(unwind)
        m.mov(RSP, Mem(R11, disp=V.STORE_SAVED_RSP))
        m.jmp(trap_exit)
    pads = [m.new_label("pad") for _ in range(3)]
    for pad in pads:  # host, helper, trap callback of an emulated store
        m.bind(pad)
        m.ret()
    sentinel = m.new_label("sentinel")
    m.bind(sentinel)
    m.ud2()
    memory = default_code_memory()
    with memory.reserve(4096) as reservation:
        address = reservation.next_address
        code = assemble(m, address, full=True)
        reservation.add(code.code, address)
        reservation.commit()
    return Routines(ENTRY(code.address_of(entry)), code.address_of(entry), code.address_of(trap),
                    code.address_of(host), code.address_of(helper), code.address_of(trap_exit),
                    tuple(code.address_of(p) for p in pads), code.address_of(sentinel),  # type: ignore[arg-type]
                    (address, len(code.code)))


# --- raw values between Python (interpreter representation) and native slots -------------------


def encode(value: Any, type_: str) -> int:
    """A raw interpreter value as the 64 bits native code holds (f64 is a Python float there)."""
    if type_ == "f64":
        return int.from_bytes(_F64.pack(value), "little")
    return value


def decode(bits: int, type_: str) -> Any:
    if type_ == "f64":
        return _F64.unpack(bits.to_bytes(8, "little"))[0]
    if type_ in ("i32", "f32"):
        return bits & 0xFFFFFFFF
    return bits


# --- per-store native state ----------------------------------------------------------------------


@dataclass
class CodeRange:
    """Where one compiled function lives, for backtraces."""

    start: int
    end: int
    func: WasmFunction
    call_sites: dict[int, int]  # return address -> wasm offset of the call
    wasm_marks: list[tuple[int, int]] = field(default_factory=list)  # (address, wasm offset) in order


@dataclass
class NativeStore:
    """What native execution needs per store: the callbacks (kept alive here), the parked
    exception, the helpers and the code map."""

    store: Store
    pending: BaseException | None = None
    helpers: list[Callable[[list], list]] = field(default_factory=list)
    helper_ids: dict[tuple[int, str, Any], int] = field(default_factory=dict)
    ranges: list[CodeRange] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    callbacks: tuple[Any, ...] = ()
    by_vmctx: dict[int, Any] = field(default_factory=dict)  # vmctx address -> runtime Instance
    trap_frames: list[Frame] = field(default_factory=list)  # of the last native trap
    emulator: Any = None  # the unicorn tier's Emulator, when this store's code runs in Unicorn
    py_callbacks: tuple[Callable[[int, int, int, int], int], ...] = ()  # host, helper, trap
    verifier: Any = None  # the Emulator verify-before-install runs new code in (jit.verify)

    def code_range(self, pc: int) -> CodeRange | None:
        i = bisect.bisect_right(self.starts, pc) - 1
        if i >= 0 and self.ranges[i].start <= pc < self.ranges[i].end:
            return self.ranges[i]
        return None

    def add_range(self, entry: CodeRange) -> None:
        i = bisect.bisect_right(self.starts, entry.start)
        self.starts.insert(i, entry.start)
        self.ranges.insert(i, entry)


_stores: weakref.WeakKeyDictionary[Store, NativeStore] = weakref.WeakKeyDictionary()


def native_store(store: Store, emulated: bool = False) -> NativeStore:
    """The store's native state, set up on first use: every function's code slot points at the
    host-call routine until it is compiled. ``emulated`` (the unicorn tier): the store's code runs
    in Unicorn, whose landing pads stand for the C callbacks; a store is one or the other."""
    state = _stores.get(store)
    if state is not None:
        if (state.emulator is not None) != emulated:
            raise UnsupportedError("a store cannot mix native and emulated (unicorn) execution")
        return state
    r = routines()
    state = NativeStore(store)
    ref = weakref.ref(state)

    def host_callback(vmctx: int, handle: int, args: int, rbp: int) -> int:
        return _host_call(ref(), vmctx, handle, args, rbp)

    def helper_callback(vmctx: int, helper: int, args: int, rbp: int) -> int:
        return _helper_call(ref(), helper, args, rbp)

    def trap_callback(vmctx: int, unused: int, unused2: int, rbp: int) -> int:
        state = ref()
        if state is not None:
            state.trap_frames = _trap_frames(state)
        return 0

    vm = store.vm
    state.py_callbacks = (host_callback, helper_callback, trap_callback)
    if emulated:
        from .emulate import Emulator

        state.emulator = Emulator(state, state.py_callbacks)
        vm.host_callback, vm.helper_callback, vm.trap_callback = r.pads
    else:
        state.callbacks = (CALLBACK(host_callback), CALLBACK(helper_callback), CALLBACK(trap_callback))
        vm.host_callback, vm.helper_callback, vm.trap_callback = (
            ctypes.cast(c, ctypes.c_void_p).value or 0 for c in state.callbacks)
    code = store.func_arrays.code
    for func in store.funcs:
        if code[func.handle] == 0:
            code[func.handle] = r.host_call
    store.default_code = r.host_call
    _stores[store] = state
    return state


def _park(state: NativeStore, exc: BaseException, rbp: int) -> int:
    """Keep ``exc`` for the entry to re-raise, with the native frames it is leaving."""
    if isinstance(exc, Trap):
        exc.frames.extend(_walk(state, rbp))
    state.pending = exc
    state.store.vm.trap_code = codegen.HOST_EXCEPTION
    return 0


def _host_call(state: NativeStore | None, vmctx: int, handle: int, args: int, rbp: int) -> int:
    """Run a non-native function for native code: raw slots in, first result out (others to slots).
    The calling instance (found by its vmctx) is the store's ``caller_instance`` meanwhile."""
    if state is None:  # pragma: no cover - the store is gone while its code runs
        return 0
    store = state.store
    outer = store.caller_instance
    try:
        func = store.funcs[handle - 1]
        ftype = func.type
        slots = (ctypes.c_uint64 * (len(ftype.params) + len(ftype.results))).from_address(args)
        raw = [decode(slots[k], t) for k, t in enumerate(ftype.params)]
        store.caller_instance = state.by_vmctx.get(vmctx)
        depth, store.depth = store.depth, store.vm.depth  # Python calls continue the native depth
        try:
            results = func.call(raw)
        finally:
            store.caller_instance = outer
            store.depth = depth
        n = len(ftype.params)
        for j in range(1, len(results)):
            slots[n + j - 1] = encode(results[j], ftype.results[j])
        return encode(results[0], ftype.results[0]) if results else 0
    except BaseException as exc:  # noqa: BLE001 - every exception must cross native code as data
        return _park(state, exc, rbp)


def _helper_call(state: NativeStore | None, helper: int, args: int, rbp: int) -> int:
    if state is None:  # pragma: no cover
        return 0
    try:
        return state.helpers[helper](args)
    except BaseException as exc:  # noqa: BLE001
        return _park(state, exc, rbp)


def _walk(state: NativeStore, rbp: int) -> list[Frame]:
    """The wasm frames of the native activations below ``rbp`` (innermost first), up to the first
    frame that is not compiled wasm code."""
    frames = []
    for _ in range(100_000):
        if not rbp:
            break
        ret = ctypes.c_uint64.from_address(rbp + 8).value
        where = state.code_range(ret)
        if where is None:
            break
        frames.append(_frame(where.func, where.call_sites.get(ret, 0)))
        rbp = ctypes.c_uint64.from_address(rbp).value
    return frames


def _frame(func: WasmFunction, offset: int) -> Frame:
    inst = func.instance
    body_start = inst.module.funcs[func.index - inst.vmod.num_imported_funcs].code.offset
    return Frame(func.index, func.name, inst.name, max(0, offset - body_start), offset)


# --- compiling and entering ------------------------------------------------------------------------


def compile_function(func: WasmFunction, full_check: bool = False, emulated: bool = False,
                     check: Callable[[WasmFunction, int], None] | None = None) -> None:
    """Give ``func`` native code and make every caller use it (its code slot and ``call``): the
    module's code for it (compiled now if neither an earlier instantiation nor a deserialized
    module provided it), installed in the store. ``emulated``: the code runs in Unicorn (the unicorn
    tier). ``check(func, entry)`` runs before anything uses the code and may refuse it by raising
    (verify-before-install)."""
    start = time.perf_counter()
    state = native_store(func.store, emulated)
    code = function_code(func, full_check)
    entry = _install(func, state, code)
    func.compile_seconds = time.perf_counter() - start
    if check is not None:
        check(func, entry)
    func.store.func_arrays.code[func.handle] = entry
    func.code = code
    func.call = _make_entry(func, state, entry, func.type.params)
    func.tier = "unicorn" if emulated else "jit"


def compile_osr(func: WasmFunction, loop: int) -> Callable[[list], list]:
    """Native code for ``func`` entered at the header of its ``loop`` instruction (on-stack
    replacement): ``call(locals) -> results``, taking the values of all its locals."""
    state = native_store(func.store)
    store = func.store
    code = compile_code(func.instance.vmod, func.info, store.consume_fuel, store.epoch_interruption,
                        osr_loop=loop)
    entry = _install(func, state, code)
    return _make_entry(func, state, entry, func.info.local_types)


def code_key(consume_fuel: bool, epoch_interruption: bool) -> CodeKey:
    """What generated code depends on besides the module (see :data:`artifact.CodeKey`)."""
    return (consume_fuel, epoch_interruption, codegen.INJECTED_FAULT)


def function_code(func: WasmFunction, full_check: bool = False) -> FunctionCode:
    """The relocatable code of ``func``: its module's, compiled (and kept there) on first use
    (``full_check``: with the assembler's full operand check, if it is compiled now)."""
    store = func.store
    cache = module_cache(func.instance.vmod, code_key(store.consume_fuel, store.epoch_interruption))
    code = cache.get(func.index)
    if code is None:
        code = cache[func.index] = compile_code(func.instance.vmod, func.info, store.consume_fuel,
                                                store.epoch_interruption, full_check=full_check)
    return code


def compile_code(vmod: ValidatedModule, info: FuncInfo, consume_fuel: bool, epoch_interruption: bool,
                 osr_loop: int | None = None, full_check: bool = False) -> FunctionCode:
    """Lower, allocate, generate and assemble one function into relocatable code (placeholders
    where the store's values go; entered at ``osr_loop``'s header if given)."""
    module = vmod.module
    name = module.names.funcs.get(info.index) or f"func[{info.index}]"
    ir = lower(module, info, name, osr_loop, consume_fuel, epoch_interruption)
    codegen.legalize(ir)
    alloc = allocate(ir, codegen.ALLOCATABLE_GPRS, codegen.ALLOCATABLE_XMMS)
    env = codegen.CompileEnv(local_funcs=set(range(vmod.num_imported_funcs,
                                                   vmod.num_imported_funcs + len(vmod.func_infos))))
    nparams = len(info.local_types) if osr_loop is not None else len(info.type.params)
    compiled = codegen.CodeGen(ir, alloc, env, nparams).run()
    code = assemble(compiled.masm, 0, full=full_check)

    def offsets(pairs: list[tuple[Any, int]]) -> tuple[tuple[int, int], ...]:
        return tuple((code.address_of(label), offset) for label, offset in pairs)

    return FunctionCode(code.code, code.address_of(compiled.entry), code.relocations,
                        offsets(compiled.trap_sites), offsets(compiled.call_sites),
                        offsets(compiled.wasm_marks))


def _install(func: WasmFunction, state: NativeStore, code: FunctionCode) -> int:
    """Copy ``code`` into code memory with its relocations patched for ``func``'s store and
    instance, and register where it lives (backtraces, the emulator): its entry address."""
    inst = func.instance
    body = link(code, _resolver(state, inst))
    with default_code_memory().reserve(len(body)) as reservation:
        address = reservation.next_address  # FUNCTION_ALIGN: the data area stays DATA_ALIGN-aligned
        reservation.add(body, address)
        reservation.commit()
    calls = {address + at: offset for at, offset in code.call_sites}
    marks = [(address + at, offset) for at, offset in code.wasm_marks]
    state.add_range(CodeRange(address, address + len(body), func, calls, marks))
    state.by_vmctx[ctypes.addressof(inst.vmctx)] = inst
    return address + code.entry


def _resolver(state: NativeStore, inst: Any) -> Callable[[Target], int]:
    """The values of the relocation targets (``codegen.TARGETS``) for code of ``inst``."""
    arrays = inst.store.func_arrays
    code_array, vmctx_array = ctypes.addressof(arrays.code), ctypes.addressof(arrays.vmctx)
    r = routines()
    values: dict[str, Callable[..., int]] = {
        "func_code": lambda index: code_array + 8 * inst.funcs[index].handle,
        "func_vmctx": lambda index: vmctx_array + 8 * inst.funcs[index].handle,
        "func_handle": lambda index: inst.funcs[index].handle,
        "code_array": lambda: code_array,
        "vmctx_array": lambda: vmctx_array,
        "type_array": lambda: ctypes.addressof(arrays.type),
        "global": lambda index: inst.globals[index].address,
        "type_id": lambda index: inst.type_ids[index],
        "trap_routine": lambda: r.trap_routine,
        "helper_routine": lambda: r.helper_call,
        "helper": lambda name, imm: _helper_id(state, inst, name, imm),
    }

    def resolve(target: Target) -> int:
        return values[target[0]](*target[1:])

    return resolve


def _make_entry(func: WasmFunction, state: NativeStore, code: int, params: tuple[str, ...],
                enter: Callable[[int, int, Any, int], int] | None = None) -> Callable[[list], list]:
    """``call(args) -> results`` running the native code through the entry routine (natively, in
    the store's emulator, or through ``enter``)."""
    if enter is None:
        enter = state.emulator.enter if state.emulator is not None else routines().entry
    vmctx = ctypes.addressof(func.instance.vmctx)
    results = func.type.results
    nslots = max(1, len(params) + max(0, len(results) - 1))
    store = func.store
    vm = store.vm
    buffer_type = ctypes.c_uint64 * (nslots + 2)
    first = results[0] if results else None

    def native_entry(args: list) -> list:
        depth = store.depth + 1
        if depth > store.max_call_depth:
            raise Trap(TrapCode.STACK_OVERFLOW)
        buffer = buffer_type(*(encode(a, t) for a, t in zip(args, params, strict=True)))
        vm.depth, vm.max_depth = depth - 1, store.max_call_depth  # the prologue counts this call
        try:
            status = enter(vmctx, code, buffer, nslots)
        finally:
            vm.depth = depth - 1
        if status:
            raise _trap_from(state, status)
        if first is None:
            return []
        out = [decode(buffer[nslots + (1 if first in ("f32", "f64") else 0)], first)]
        for j in range(1, len(results)):
            out.append(decode(buffer[len(params) + j - 1], results[j]))
        return out

    return native_entry


def _trap_from(state: NativeStore, status: int) -> BaseException:
    vm = state.store.vm
    vm.trap_code = 0
    if status == codegen.HOST_EXCEPTION:
        exc, state.pending = state.pending, None
        if isinstance(exc, Trap):  # e.g. a helper's out-of-bounds table access
            state.store.after_trap(exc.trap_code)
        return exc if exc is not None else Trap("lost host exception")
    code = codegen.TRAP_BY_NUMBER[status]
    state.store.after_trap(code)
    trap = Trap(code)
    # A call that would go too deep traps in its prologue: like the interpreter, the backtrace
    # holds the activations that exist, not the one that could not start.
    trap.frames.extend(state.trap_frames[1:] if code is TrapCode.STACK_OVERFLOW else state.trap_frames)
    state.trap_frames = []
    return trap


def _trap_frames(state: NativeStore) -> list[Frame]:
    """The backtrace of the trap the VMStore describes (called before the stack unwinds)."""
    vm = state.store.vm
    where = state.code_range(vm.trap_pc - 1)  # the stub's call is its function's last instruction
    if where is None:
        return []
    return [_frame(where.func, vm.trap_offset), *_walk(state, vm.trap_rbp)]


def _helper_id(state: NativeStore, inst: Any, name: str, imm: Any) -> int:
    key = (id(inst), name, imm if not isinstance(imm, list) else tuple(imm))
    found = state.helper_ids.get(key)
    if found is None:
        found = state.helper_ids[key] = len(state.helpers)
        state.helpers.append(_make_helper(inst, name, imm))
    return found


def _make_helper(inst: Any, name: str, imm: Any) -> Callable[[int], int]:
    """A runtime helper reading its operands from native argument slots (raw u64 values)."""
    from ..interp import handlers as H

    mem = inst.mems[0] if inst.mems else None
    if name == "ref_func":
        handle = inst.funcs[imm].handle
        return lambda args: handle
    if name in ("memory_grow", "memory_fill", "memory_copy"):
        handler, count = getattr(H, name)(0, mem, 0), {"memory_grow": 1}.get(name, 3)
    elif name == "memory_init":
        data = imm if isinstance(imm, int) else imm[0]
        handler, count = H.memory_init(0, mem, inst.datas, data, 0), 3
    elif name == "data_drop":
        handler, count = H.data_drop(inst.datas, imm, 0), 0
    elif name == "elem_drop":
        handler, count = H.elem_drop(inst.elems, imm, 0), 0
    elif name in ("table_get", "table_set", "table_size", "table_grow", "table_fill"):
        counts = {"table_get": 1, "table_set": 2, "table_size": 0, "table_grow": 2, "table_fill": 3}
        handler, count = getattr(H, name)(0, inst.tables[imm], 0), counts[name]
    elif name == "table_copy":
        handler, count = H.table_copy(0, inst.tables[imm[0]], inst.tables[imm[1]], 0), 3
    elif name == "table_init":
        handler, count = H.table_init(0, inst.tables[imm[1]], inst.elems, imm[0], 0), 3
    else:  # pragma: no cover - the lowering only emits the helpers above
        raise UnsupportedError(f"no runtime helper for {name}")

    def helper(args: int) -> int:
        slots = (ctypes.c_uint64 * max(1, count)).from_address(args)
        R = [slots[k] & 0xFFFFFFFF if k != 1 or name not in ("table_set", "table_fill") else slots[k]
             for k in range(count)] + [0]
        if name == "table_grow":  # (init ref, delta)
            R[0] = slots[0]
        handler(R)
        return R[0]

    return helper
