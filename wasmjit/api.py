"""The public embedding API, with wasmtime-py's names and call shapes.

Code written for wasmtime-py runs on wasmjit by changing the import. Python values cross the
boundary as in wasmtime-py: i32/i64 results are signed ints, f32/f64 are floats (f32 NaN
payloads, even signalling ones, survive the round trip exactly), externref is any Python object
(None is null) and funcref is a :class:`Func` or None. Inside, the engine works on raw values
(see runtime.store). This is the composition root: it is the module that knows the tiers.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sys
import tomllib
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from . import interp
from . import structure as S
from .decode import decode_module
from .errors import (
    LinkError,
    Trap,
    TrapCode,
    UnsupportedError,
    WasmjitError,
    WasmjitTypeError,
    WasmjitValueError,
)
from .runtime import numerics
from .runtime.instance import Instance as _RtInstance
from .runtime.instance import check_import
from .runtime.instance import instantiate as _instantiate
from .runtime.memory import MAX_PAGES, PAGE_SIZE, LinearMemory
from .runtime.store import (
    DEFAULT_MAX_CALL_DEPTH,
    DEFAULT_MAX_WASM_STACK,
    DEFAULTS,
    MAX_WASM_STACK,
    Function,
    GlobalInst,
    HostFunction,
    TableInst,
    WasmFunction,
)
from .runtime.store import Store as _RtStore
from .runtime.vmctx import EpochCounter
from .validate import ValidatedModule, validate_module
from .validate.features import BULK_MEMORY, MULTI_VALUE, REFERENCE_TYPES, check_features
from .wasi import FUNCTIONS as WASI_FUNCTIONS
from .wasi import MODULE_NAME as WASI_MODULE
from .wasi import WasiConfig, WasiContext, raw_host
from .wat import looks_like_text, wat2wasm

TIERS = ("interp", "jit", "tiered", "unicorn")
AVAILABLE_TIERS = TIERS  # every tier is built (the name stays for code that enumerates them)
COUNTING_TIERS = ("interp", "tiered")  # tiers whose interpreter counts entries and back-edges
DEFAULT_TIER = "tiered"
_T = TypeVar("_T")


def resolve_tier(tier: str | None) -> str:
    """The tier to use: the given one, else $WASMJIT_TIER, else the default; checked."""
    chosen = tier if tier is not None else os.environ.get("WASMJIT_TIER") or DEFAULT_TIER
    if chosen not in TIERS:
        raise WasmjitError(f"unknown tier {chosen!r}: expected one of {', '.join(TIERS)}")
    return chosen


# --- Configuration ---------------------------------------------------------------------------


def _tier_up_from_env() -> tuple[int | None, int | None]:
    raw = os.environ.get("WASMJIT_TIER_UP")
    if not raw:
        return None, None
    try:
        calls, loops = (int(x) for x in raw.split(","))
    except ValueError:
        raise WasmjitError(f"WASMJIT_TIER_UP={raw!r}: expected CALLS,LOOPS (two integers)") from None
    return calls, loops


class _Setting:
    """One of wasmtime-py's Config settings: checked as wasmtime-py checks it when set (same
    exception types and messages), then stored; readable too (wasmtime-py's are write-only).
    Reading one that was never set gives ``default``: what wasmjit does."""

    def __init__(self, default: Any, check: Callable[[Any], None]) -> None:
        self.default, self.check = default, check

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, config: Any, owner: type | None = None) -> Any:
        if config is None:
            return self
        return config.__dict__.get(self.name, self.default)

    def __set__(self, config: Any, value: Any) -> None:
        self.check(value)
        config.__dict__[self.name] = value


def _bool(value: Any) -> None:
    if not isinstance(value, bool):
        raise WasmjitTypeError("expected a bool")


def _int(value: Any) -> None:
    if not isinstance(value, int):
        raise WasmjitTypeError("expected an int")


def _one_of(what: str, *options: str) -> Callable[[Any], None]:
    def check(value: Any) -> None:
        if value not in options:
            raise WasmjitError(f"unknown {what}: {value}")
    return check


def _cache(value: Any) -> None:
    """True (wasmtime's default cache) or the path of a readable TOML cache configuration.
    wasmjit keeps no code cache: the setting is only checked and stored."""
    if isinstance(value, bool):
        if not value:
            raise WasmjitError("caching cannot be explicitly disabled")
        return
    if not isinstance(value, str):
        raise WasmjitTypeError("expected string or bool")
    try:
        text = Path(value).read_text()
    except OSError as err:
        raise WasmjitError(f"failed to read config file: {value}\n\nCaused by:\n    "
                           f"{err.strerror} (os error {err.errno})\n") from None
    try:
        _check_cache_fields(tomllib.loads(text))
    except (tomllib.TOMLDecodeError, ValueError) as err:
        raise WasmjitError(f"failed to parse config file: {value}\n\nCaused by:\n    {err}\n") from None


_CACHE_FIELDS = ("directory", "worker-event-queue-size", "baseline-compression-level",
                 "optimized-compression-level", "optimized-compression-usage-counter-threshold",
                 "cleanup-interval", "optimizing-compression-task-timeout",
                 "allowed-clock-drift-for-files-from-future", "file-count-soft-limit",
                 "files-total-size-soft-limit", "file-count-limit-percent-if-deleting",
                 "files-total-size-limit-percent-if-deleting")


def _check_cache_fields(config: dict[str, Any]) -> None:
    """The fields wasmtime's cache configuration has (wasmtime also says where, line and column)."""
    for key in config:
        if key != "cache":
            raise ValueError(f"unknown field `{key}`, expected `cache`")
    for key in config.get("cache", {}):
        if key not in _CACHE_FIELDS:
            raise ValueError(f"unknown field `{key}`, expected one of "
                             + ", ".join(f"`{field}`" for field in _CACHE_FIELDS))


# Architectures of target triples (target-lexicon's names wasmtime knows); wasmjit emits x86-64.
_ARCHITECTURES = ("x86_64", "aarch64", "riscv64", "riscv64gc", "s390x", "i686", "arm", "armv7",
                  "wasm32", "wasm64", "pulley32", "pulley64", "pulley32be", "pulley64be")


def _target(value: Any) -> None:
    if not isinstance(value, str):
        raise WasmjitTypeError("expected a str")
    arch = value.split("-", 1)[0]
    if arch not in _ARCHITECTURES:
        raise WasmjitError(f"Unrecognized architecture: {arch}")
    if arch != "x86_64":
        raise UnsupportedError(f"wasmjit generates x86-64 code only, not {arch} ({value})")


def _str(what: str, value: Any) -> None:
    if not isinstance(value, str):
        raise WasmjitTypeError(f"expected a str{what}")


class Config:
    """Engine settings. ``tier`` selects the execution tier (default: $WASMJIT_TIER or tiered).

    wasmtime-py's settings are all accepted, checked as wasmtime-py checks them, and stored;
    the proposals wasmjit implements (``wasm_multi_value``, ``wasm_bulk_memory``,
    ``wasm_reference_types``) are honoured: switched off, modules using them are invalid. The
    other settings (other proposals, Cranelift, caching, profiling, memory reservation) have no
    effect in wasmjit.
    """

    def __init__(self) -> None:
        self._tier: str | None = None
        self.max_call_depth = DEFAULT_MAX_CALL_DEPTH
        # Tier ``tiered``: entries / loop back-edges before a function is compiled (None: the
        # defaults of wasmjit.jit.tier); $WASMJIT_TIER_UP="CALLS,LOOPS" sets both.
        self.tier_up_calls, self.tier_up_loops = _tier_up_from_env()
        # Tier ``tiered``: run new native code under Unicorn and the interpreter on recent and edge
        # inputs before installing it (wasmjit.jit.verify); a mismatch keeps the interpreter.
        # $WASMJIT_VERIFY=1 turns it on.
        self.verify = os.environ.get("WASMJIT_VERIFY", "0") not in ("", "0")
        # Resource control, as in wasmtime: fuel (Store.set_fuel) and epoch interruption
        # (Engine.increment_epoch, Store.set_epoch_deadline), checked in every tier.
        self.consume_fuel = False
        self.epoch_interruption = False
        # Bytes of native stack wasm may use (native code traps "call stack exhausted" past it).
        self.max_wasm_stack = DEFAULT_MAX_WASM_STACK

    @property
    def tier(self) -> str | None:
        return self._tier

    @tier.setter
    def tier(self, value: str) -> None:
        resolve_tier(value)  # reject unknown and unavailable tiers now, not at first use
        self._tier = value

    # WebAssembly proposals: the three wasmjit implements can be switched off...
    wasm_multi_value = _Setting(True, _bool)
    wasm_bulk_memory = _Setting(True, _bool)
    wasm_reference_types = _Setting(True, _bool)
    # ... the others are not implemented (modules using them are rejected whatever these say).
    wasm_threads = _Setting(False, _bool)
    wasm_tail_call = _Setting(False, _bool)
    wasm_simd = _Setting(False, _bool)
    wasm_relaxed_simd = _Setting(False, _bool)
    wasm_relaxed_simd_deterministic = _Setting(False, _bool)
    wasm_multi_memory = _Setting(False, _bool)
    wasm_memory64 = _Setting(False, _bool)
    wasm_exceptions = _Setting(False, _bool)
    wasm_function_references = _Setting(False, _bool)
    wasm_gc = _Setting(False, _bool)
    wasm_wide_arithmetic = _Setting(False, _bool)
    wasm_custom_page_sizes = _Setting(False, _bool)
    wasm_stack_switching = _Setting(False, _bool)
    wasm_component_model = _Setting(False, _bool)
    wasm_component_model_map = _Setting(False, _bool)
    wasm_component_model_implements = _Setting(False, _bool)
    shared_memory = _Setting(False, _bool)
    gc_support = _Setting(True, _bool)
    # Code generation and runtime settings of wasmtime's, stored only.
    debug_info = _Setting(False, _bool)
    strategy = _Setting("auto", _one_of("strategy", "auto", "cranelift"))
    cranelift_debug_verifier = _Setting(False, _bool)
    cranelift_opt_level = _Setting("speed", _one_of("opt level", "none", "speed", "speed_and_size"))
    cranelift_nan_canonicalization = _Setting(False, _bool)
    profiler = _Setting("none", _one_of("profiler", "none", "jitdump", "vtune", "perfmap"))
    cache = _Setting(False, _cache)  # False: not set (wasmtime-py refuses False when set)
    parallel_compilation = _Setting(False, _bool)  # wasmjit compiles on the calling thread
    memory_may_move = _Setting(True, _bool)
    memory_reservation = _Setting(0, _int)
    memory_guard_size = _Setting(0, _int)
    memory_reservation_for_growth = _Setting(0, _int)
    native_unwind_info = _Setting(True, _bool)
    target = _Setting("x86_64-unknown-linux-gnu", _target)
    macos_use_mach_ports = _Setting(False, _bool)
    signals_based_traps = _Setting(True, _bool)
    memory_init_cow = _Setting(True, _bool)

    def cranelift_flag_enable(self, flag: str) -> None:
        """Stored in ``cranelift_flags`` (as "true"); wasmjit has no Cranelift."""
        _str("", flag)
        self.cranelift_flags[flag] = "true"

    def cranelift_flag_set(self, key: str, value: str) -> None:
        """Stored in ``cranelift_flags``; wasmjit has no Cranelift."""
        _str(" for key", key)
        _str(" for value", value)
        self.cranelift_flags[key] = value

    @property
    def cranelift_flags(self) -> dict[str, str]:
        """The flags ``cranelift_flag_enable``/``cranelift_flag_set`` stored."""
        return self.__dict__.setdefault("_cranelift_flags", {})

    @property
    def disabled_features(self) -> frozenset[str]:
        """The implemented proposals switched off (names of ``wasmjit.validate.features``)."""
        settings = {MULTI_VALUE: self.wasm_multi_value, BULK_MEMORY: self.wasm_bulk_memory,
                    REFERENCE_TYPES: self.wasm_reference_types}
        return frozenset(name for name, enabled in settings.items() if not enabled)


class Engine:
    """Compilation settings shared by stores and modules."""

    def __init__(self, config: Config | None = None) -> None:
        self.config = config or Config()
        self.tier = resolve_tier(self.config.tier)
        if self.config.verify and self.tier != "tiered":
            raise WasmjitError(f"Config.verify checks code as functions tier up, so it needs the "
                               f"tiered tier, not {self.tier!r}")
        # Each wasm call is two Python frames in the interpreter; leave room for host code.
        needed = 3 * self.config.max_call_depth + 2000
        if sys.getrecursionlimit() < needed:
            sys.setrecursionlimit(needed)
        self._epoch = EpochCounter()
        stack = self.config.max_wasm_stack
        if isinstance(stack, bool) or not isinstance(stack, int) or not 4096 <= stack <= MAX_WASM_STACK:
            raise WasmjitError(f"max_wasm_stack must be between 4096 and {MAX_WASM_STACK} bytes, "
                               f"not {stack!r}")

    def increment_epoch(self) -> None:
        """Advance this engine's epoch by one (safe from any thread): wasm in a store with
        ``epoch_interruption`` traps at its next function entry or loop header once the epoch
        reaches the store's deadline."""
        self._epoch.increment()

    def install(self, func: WasmFunction) -> None:
        """Fill a new function's tier slot according to this engine's tier: the interpreter, or
        (tier ``jit``) native code compiled now."""
        if self.tier in ("jit", "unicorn"):
            from .jit.native import compile_function
            compile_function(func, emulated=self.tier == "unicorn")
        elif self.tier == "tiered":
            from .jit import tier
            calls, loops = self.config.tier_up_calls, self.config.tier_up_loops
            tier.install(func, tier.TIER_UP_CALLS if calls is None else calls,
                         tier.TIER_UP_LOOPS if loops is None else loops, self.config.verify)
        else:
            interp.install(func)


# --- Types -----------------------------------------------------------------------------------


class ValType:
    """A value type: ``ValType.i32()``, ... (compares equal by name, prints as the name)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    def i32(cls) -> ValType:
        return cls("i32")

    @classmethod
    def i64(cls) -> ValType:
        return cls("i64")

    @classmethod
    def f32(cls) -> ValType:
        return cls("f32")

    @classmethod
    def f64(cls) -> ValType:
        return cls("f64")

    @classmethod
    def externref(cls) -> ValType:
        return cls("externref")

    @classmethod
    def funcref(cls) -> ValType:
        return cls("funcref")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ValType) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return self.name

    __str__ = __repr__


def _valtypes(types: Sequence[ValType]) -> tuple[str, ...]:
    for t in types:
        if not isinstance(t, ValType):
            raise WasmjitTypeError(f"expected a ValType, found {t!r}")
    return tuple(t.name for t in types)


class FuncType:
    """A function type: ``FuncType([ValType.i32()], [ValType.i64()])``."""

    def __init__(self, params: Sequence[ValType], results: Sequence[ValType]) -> None:
        self._type = S.FuncType(_valtypes(params), _valtypes(results))

    @classmethod
    def _wrap(cls, ftype: S.FuncType) -> FuncType:
        obj = cls.__new__(cls)
        obj._type = ftype
        return obj

    @property
    def params(self) -> list[ValType]:
        return [ValType(t) for t in self._type.params]

    @property
    def results(self) -> list[ValType]:
        return [ValType(t) for t in self._type.results]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FuncType) and other._type == self._type

    def __repr__(self) -> str:
        return f"FuncType({self.params}, {self.results})"


class Limits:
    def __init__(self, min: int, max: int | None) -> None:  # noqa: A002 - wasmtime-py's names
        self.min = min
        self.max = max

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Limits) and (self.min, self.max) == (other.min, other.max)

    def __repr__(self) -> str:
        return f"Limits({self.min}, {self.max})"


class GlobalType:
    def __init__(self, valtype: ValType, mutable: bool) -> None:
        self._type = S.GlobalType(_valtypes([valtype])[0], bool(mutable))

    @classmethod
    def _wrap(cls, gtype: S.GlobalType) -> GlobalType:
        return cls(ValType(gtype.valtype), gtype.mutable)

    @property
    def content(self) -> ValType:
        return ValType(self._type.valtype)

    @property
    def mutable(self) -> bool:
        return self._type.mutable


class TableType:
    def __init__(self, valtype: ValType, limits: Limits) -> None:
        elem = _valtypes([valtype])[0]
        if elem not in ("funcref", "externref"):
            raise WasmjitTypeError(f"a table holds references, not {elem}")
        if not isinstance(limits, Limits):
            raise WasmjitTypeError("expected Limits")
        self._elem, self._limits = elem, limits

    @property
    def element(self) -> ValType:
        return ValType(self._elem)

    @property
    def limits(self) -> Limits:
        return self._limits


class MemoryType:
    def __init__(self, limits: Limits, is_64: bool = False, shared: bool = False) -> None:
        if not isinstance(limits, Limits):
            raise WasmjitTypeError("expected Limits")
        if is_64 or shared:
            raise UnsupportedError("64-bit and shared memories are not supported")
        self._limits = limits

    @property
    def limits(self) -> Limits:
        return self._limits

    @property
    def is_64(self) -> bool:
        return False

    @property
    def is_shared(self) -> bool:
        return False


def _extern_type(desc: Any, module: S.Module) -> Any:
    if isinstance(desc, int):
        return FuncType._wrap(module.types[desc])
    if isinstance(desc, S.TableType):
        return TableType(ValType(desc.elem), Limits(desc.limits.min, desc.limits.max))
    if isinstance(desc, S.MemoryType):
        return MemoryType(Limits(desc.limits.min, desc.limits.max))
    return GlobalType._wrap(desc)


@dataclass(frozen=True)
class ImportType:
    module: str
    name: str
    type: Any


@dataclass(frozen=True)
class ExportType:
    name: str
    type: Any


# --- Values ----------------------------------------------------------------------------------


class Val:
    """A typed value, as wasmtime-py's ``Val`` (``Val.i32(5)``, ``Val.externref(obj)``, ...)."""

    __slots__ = ("_type", "value")

    def __init__(self, valtype: str, value: Any) -> None:
        self._type, self.value = valtype, value

    @classmethod
    def i32(cls, value: int) -> Val:
        return cls("i32", numerics.signed32(_int_bits(_expect_int(value), 32)))

    @classmethod
    def i64(cls, value: int) -> Val:
        return cls("i64", numerics.signed64(_int_bits(_expect_int(value), 64)))

    @classmethod
    def f32(cls, value: float) -> Val:
        """An f32: the value rounded to single precision, as wasmtime-py stores it."""
        return cls("f32", numerics.f32_to_float(numerics.float_to_f32(_expect_float(value))))

    @classmethod
    def f64(cls, value: float) -> Val:
        return cls("f64", _expect_float(value))

    @classmethod
    def externref(cls, value: Any) -> Val:
        return cls("externref", value)

    @classmethod
    def funcref(cls, value: Func | None) -> Val:
        return cls("funcref", value)

    @classmethod
    def ref_null(cls, valtype: ValType) -> Val:
        return cls(valtype.name, None)

    @property
    def type(self) -> ValType:
        return ValType(self._type)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Val):
            return (self._type, self.value) == (other._type, other.value)
        return self.value == other

    def __repr__(self) -> str:
        return f"Val.{self._type}({self.value!r})"


def _expect_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise WasmjitTypeError("expected an integer")
    return value


def _expect_float(value: Any) -> float:
    """A float (an int is taken too, as everywhere in wasmjit's API; wasmtime-py wants a float)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise WasmjitTypeError("expected a float")
    return float(value)


def _int_bits(value: Any, bits: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise WasmjitTypeError(f"don't know how to convert {value!r} to i{bits}")
    if not -(1 << (bits - 1)) <= value < (1 << bits):
        raise WasmjitTypeError(f"{value} is out of range for i{bits}")
    return value & ((1 << bits) - 1)


def _as_store(store: Store | Caller) -> Store:
    """The Store behind a store argument: a Store, or a Caller (wasmtime-py's ``Storelike``)."""
    if isinstance(store, Caller):
        store._check_valid()
        store = store._store
    elif not isinstance(store, Store):
        raise WasmjitTypeError(f"expected a Store or Caller, found {type(store).__name__}")
    if store._closed:
        raise WasmjitValueError("already closed")
    return store


def to_raw(store: Store | Caller, valtype: str, value: Any) -> Any:
    """A Python value (or Val) of ``valtype`` as the engine's raw value."""
    store = _as_store(store)
    if isinstance(value, Val):
        if value._type != valtype:
            raise WasmjitTypeError("wrong type of `Val` provided")
        value = value.value
    if valtype == "i32":
        return _int_bits(value, 32)
    if valtype == "i64":
        return _int_bits(value, 64)
    if valtype in ("f32", "f64"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise WasmjitTypeError(f"don't know how to convert {value!r} to {valtype}")
        return numerics.float_to_f32(float(value)) if valtype == "f32" else float(value)
    if valtype == "funcref":
        if value is None:
            return 0
        if not isinstance(value, Func):
            raise WasmjitTypeError(f"don't know how to convert {value!r} to funcref")
        if value._func.store is not store._store:
            raise WasmjitError("the function belongs to a different store")
        return value._func.handle
    if valtype == "externref":
        return store._store.extern_handle(value)
    raise UnsupportedError(f"values of type {valtype} are not supported")


def from_raw(store: Store | Caller, valtype: str, raw: Any) -> Any:
    """The Python value of a raw engine value of ``valtype``."""
    store = _as_store(store)
    if valtype == "i32":
        return numerics.signed32(raw)
    if valtype == "i64":
        return numerics.signed64(raw)
    if valtype == "f32":
        return numerics.f32_to_float(raw)
    if valtype == "f64":
        return raw
    if valtype == "funcref":
        func = store._store.func(raw)
        return None if func is None else Func._wrap(store, func)
    return store._store.extern(raw)


# --- Store, modules, instances ---------------------------------------------------------------


@dataclass(frozen=True)
class FuncStats:
    """Execution counters of one wasm function (see ``Store.func_stats``)."""

    module: str | None
    index: int
    name: str | None
    entries: int
    back_edges: int
    tier: str
    compile_ms: float = 0.0  # time spent compiling it to native code
    code_bytes: int = 0  # size of its native code
    # verify-before-install (Config.verify): "" (not verified), "passed: N inputs (+M skipped), T ms"
    # or "FAILED: <what differed>"
    verified: str = ""


class Store:
    """Owns all runtime objects; every API call takes the store, as in wasmtime-py."""

    def __init__(self, engine: Engine | None = None, data: Any = None) -> None:
        self.engine = engine or Engine()
        self._data = data
        config = self.engine.config
        self._store = _RtStore(config.max_call_depth, consume_fuel=bool(config.consume_fuel),
                               epoch=self.engine._epoch if config.epoch_interruption else None,
                               max_wasm_stack=config.max_wasm_stack)
        self._wasi: WasiContext | None = None

    def data(self) -> Any:
        return _as_store(self)._data

    def set_fuel(self, fuel: int) -> None:
        """Give wasm ``fuel`` units to run on (one per instruction, as in wasmtime)."""
        self._fuel_enabled()
        if not isinstance(fuel, int) or fuel < 0:
            raise WasmjitTypeError(f"fuel must be a non-negative integer, found {fuel!r}")
        self._store.set_fuel(fuel)

    def get_fuel(self) -> int:
        """Fuel left."""
        self._fuel_enabled()
        return self._store.get_fuel()

    def _fuel_enabled(self) -> None:
        _as_store(self)  # not closed
        if not self._store.consume_fuel:
            raise WasmjitError("fuel is not configured in this store")

    def set_limits(self, memory_size: int = -1, table_elements: int = -1, instances: int = -1,
                   tables: int = -1, memories: int = -1) -> None:
        """Limit each linear memory's size (bytes) and each table's elements (growth past them
        returns -1, instantiation needing more fails), and how many instances, tables and
        memories instantiation may create. A negative value leaves that limit as it is."""
        _as_store(self)
        given = {"memory_size": memory_size, "table_elements": table_elements,
                 "instances": instances, "tables": tables, "memories": memories}
        for name, value in given.items():
            if isinstance(value, bool) or not isinstance(value, int):
                raise WasmjitTypeError(f"{name} must be an integer, found {value!r}")
            if value >= 0:
                setattr(self._store.limits, name, value)

    def set_epoch_deadline(self, ticks_beyond_current: int) -> None:
        """Trap wasm in this store once the engine's epoch is ``ticks_beyond_current`` past its
        current value (needs ``Config.epoch_interruption``)."""
        _as_store(self)
        if not isinstance(ticks_beyond_current, int) or ticks_beyond_current < 0:
            raise WasmjitTypeError(f"ticks must be a non-negative integer, found {ticks_beyond_current!r}")
        epoch = self.engine._epoch.cell.value
        self._store.vm.epoch_deadline = min(epoch + ticks_beyond_current, (1 << 64) - 1)

    def set_wasi(self, wasi: WasiConfig) -> None:
        """Give WASI functions defined by ``Linker.define_wasi`` this configuration."""
        _as_store(self)
        self._wasi = wasi.context()

    def _wasi_context(self) -> WasiContext:
        if self._wasi is None:
            raise WasmjitError("WASI is not configured for this store: call store.set_wasi(WasiConfig())")
        return self._wasi

    def _caller_memory(self) -> LinearMemory:
        inst = self._store.caller_instance
        mem = inst.exports.get("memory") if inst is not None else None
        if not isinstance(mem, LinearMemory):
            raise WasmjitError("a WASI function needs the calling module to export `memory`")
        return mem

    def func_stats(self) -> list[FuncStats]:
        """Entry and loop back-edge counts of every wasm function in this store."""
        return [_stats(f) for f in self._store.funcs if isinstance(f, WasmFunction)]

    _closed = False  # set by close(): every later use raises ValueError, as in wasmtime-py

    def gc(self) -> None:
        """Let go of the ``externref`` objects this store was given that no table, global or
        element segment of it still holds (wasmtime-py's ``Store.gc``). Called from a host
        function while wasm runs it does nothing: the running wasm holds references too."""
        if _as_store(self)._store.depth == 0:
            self._store.collect_externs()

    def close(self) -> None:
        """End this store (wasmtime-py's ``close``): any later use of it, or of a Caller,
        function, memory, table or global through it, raises ``WasmjitValueError("already
        closed")``, a ValueError. Closing again does nothing."""
        self._closed = True

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _stats(func: WasmFunction) -> FuncStats:
    native = func.code if func.tier in ("jit", "unicorn") else None
    report = func.verify_report
    if report is not None:
        verified = (f"passed: {report.inputs} inputs" + (f" (+{report.inconclusive} skipped)"
                    if report.inconclusive else "") + f", {report.seconds * 1000:.1f} ms")
    elif type(func.compile_error).__name__ == "VerificationError":
        verified = f"FAILED: {func.compile_error}"
    else:
        verified = ""
    return FuncStats(func.instance.name, func.index, func.name, func.entries, func.backedges[0],
                     func.tier, round(func.compile_seconds * 1000, 3), len(native.code) if native else 0,
                     verified)


def _load(engine: Engine, binary: bytes) -> ValidatedModule:
    """Decode and validate ``binary`` with the proposals ``engine``'s Config allows."""
    module = decode_module(binary)
    check_features(module, engine.config.disabled_features)
    return validate_module(module)


def _fingerprint(engine: Engine) -> Any:
    """What native code compiled for ``engine`` depends on (jit.serialize.Fingerprint)."""
    from .jit import serialize

    config = engine.config
    return serialize.fingerprint(engine.tier != "interp", config.consume_fuel, config.epoch_interruption)


def _read_file(path: str | os.PathLike, failure: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as err:
        raise WasmjitError(f"{failure} {os.fspath(path)!r}: {err.strerror}") from None


class Module:
    """A decoded and validated module: ``Module(engine, wasm_bytes_or_wat_text)``.

    Its native code (tiers jit, tiered, unicorn) is compiled once, for the first instance that
    needs it, and shared by all its instances; :meth:`serialize` saves it with the wasm bytes and
    :meth:`deserialize` loads it, so a later run skips compiling (see ``wasmjit.jit.serialize``).
    """

    def __init__(self, engine: Engine, wasm: str | bytes | bytearray) -> None:
        if isinstance(wasm, str):
            binary = wat2wasm(wasm)
        elif isinstance(wasm, (bytes, bytearray, memoryview)):
            binary = bytes(wasm)
            if looks_like_text(binary):
                binary = wat2wasm(binary)
        else:
            raise WasmjitTypeError(f"expected wasm bytes or WAT text, found {type(wasm).__name__}")
        self.engine = engine
        self._binary = binary
        self._vmod: ValidatedModule = _load(engine, binary)

    @classmethod
    def from_file(cls, engine: Engine, path: str | os.PathLike) -> Module:
        return cls(engine, _read_file(path, "cannot read"))

    @staticmethod
    def validate(engine: Engine, wasm: bytes | bytearray) -> None:
        """Raise DecodeError/ValidationError if ``wasm`` is not a valid module."""
        _load(engine, bytes(wasm))

    def serialize(self) -> bytearray:
        """This module in wasmjit's format: its wasm bytes and, on tiers that run native code, every
        function's code (compiled now if no instance needed it yet; on tier ``tiered`` a function
        the JIT cannot compile is left to the interpreter)."""
        from .jit import serialize

        fp = _fingerprint(self.engine)
        funcs = serialize.module_code(self._vmod, fp, required=self.engine.tier in ("jit", "unicorn"))
        return serialize.serialize(fp, self._binary, funcs)

    @classmethod
    def deserialize(cls, engine: Engine, encoded: bytes | bytearray) -> Module:
        """A module from what :meth:`serialize` returned, with its native code: instances install
        that code instead of compiling. The data must come from the same wasmjit build with the
        same ``consume_fuel`` and ``epoch_interruption`` settings, and a tier running native code
        for native code (or ``interp`` for none); otherwise, or if it is corrupted, WasmjitError."""
        from .jit import serialize

        if not isinstance(encoded, (bytes, bytearray)):
            raise WasmjitTypeError("expected bytes")
        fp = _fingerprint(engine)
        binary, funcs = serialize.deserialize(encoded, fp)
        module = cls(engine, binary)
        serialize.attach(module._vmod, fp, funcs)
        return module

    @classmethod
    def deserialize_file(cls, engine: Engine, path: str | os.PathLike) -> Module:
        """:meth:`deserialize` of the contents of the file at ``path``."""
        return cls.deserialize(engine, _read_file(path, "failed to open file"))

    @property
    def imports(self) -> list[ImportType]:
        module = self._vmod.module
        return [ImportType(i.module, i.name, _extern_type(i.desc, module)) for i in module.imports]

    @property
    def exports(self) -> list[ExportType]:
        module = self._vmod.module
        types = {S.FUNC: module.func_types(), S.TABLE: module.table_types(),
                 S.MEMORY: module.memory_types(), S.GLOBAL: module.global_types()}
        out = []
        for export in module.exports:
            desc = types[export.kind][export.index]
            if isinstance(desc, S.FuncType):
                out.append(ExportType(export.name, FuncType._wrap(desc)))
            else:
                out.append(ExportType(export.name, _extern_type(desc, module)))
        return out


class InstanceExports(Mapping[str, Any]):
    """An instance's exports by name (``exports[name]``) and in order (``by_index``)."""

    def __init__(self, store: Store, inst: _RtInstance) -> None:
        self._map = {name: _wrap_extern(store, ext) for name, ext in inst.exports.items()}
        self._seq = tuple(self._map.values())

    @property
    def by_index(self) -> Sequence[Any]:
        return self._seq

    def __getitem__(self, name: str) -> Any:
        return self._map[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._map)

    def __len__(self) -> int:
        return len(self._seq)


class Instance:
    """``Instance(store, module, imports)``: instantiate with externs in import order."""

    def __init__(self, store: Store | Caller, module: Module, imports: Sequence[Any]) -> None:
        store = _as_store(store)
        externs = []
        for item in imports:
            if not isinstance(item, (Func, Memory, Global, Table)):
                raise WasmjitTypeError(f"an import must be a Func, Memory, Global or Table, "
                                       f"found {type(item).__name__}")
            externs.append(item._extern)
        self._store = store
        self._inst = _entering_wasm(lambda: _instantiate(store._store, module._vmod, externs,
                                                         store.engine.install))
        self._exports: InstanceExports | None = None

    def exports(self, store: Store | Caller) -> InstanceExports:
        _as_store(store)
        if self._exports is None:
            self._exports = InstanceExports(self._store, self._inst)
        return self._exports

    def func_stats(self, store: Store) -> list[FuncStats]:
        """Entry and loop back-edge counts of this instance's own functions."""
        return [_stats(f) for f in self._inst.funcs
                if isinstance(f, WasmFunction) and f.instance is self._inst]


def _wrap_extern(store: Store, ext: Any) -> Any:
    if isinstance(ext, Function):
        return Func._wrap(store, ext)
    if isinstance(ext, LinearMemory):
        return Memory._wrap(ext)
    if isinstance(ext, GlobalInst):
        return Global._wrap(ext)
    return Table._wrap(ext)


# --- Externs ---------------------------------------------------------------------------------


class Caller:
    """What a host function defined with ``access_caller=True`` sees: the calling instance's
    exports (``get``, ``[name]``), and a store argument for API calls. After the host call
    returns, as in wasmtime-py, ``get`` finds nothing and using it as a store raises ValueError."""

    def __init__(self, store: Store, inst: _RtInstance | None) -> None:
        self._store, self._inst, self._valid = store, inst, True

    def _check_valid(self) -> None:
        if not self._valid:
            raise WasmjitValueError("caller is no longer valid")

    def get(self, name: str) -> Any:
        """The calling instance's export ``name``, or None (also when there is no calling
        instance: the host function was called from Python)."""
        if not isinstance(name, str):
            raise WasmjitTypeError(f"an export name is a str, not {type(name).__name__}")
        if not self._valid or self._inst is None or name not in self._inst.exports:
            return None
        return _wrap_extern(self._store, self._inst.exports[name])

    def __getitem__(self, name: str) -> Any:
        found = self.get(name)
        if found is None:
            raise KeyError(f"failed to find export {name}")
        return found


class Func:
    """A function: ``Func(store, FuncType, callable, access_caller=False)`` or an export."""

    def __init__(self, store: Store, ty: FuncType, func: Callable[..., Any],
                 access_caller: bool = False) -> None:
        if not callable(func):
            raise WasmjitTypeError("expected a callable for Func")
        store = _as_store(store)
        self._func: Function = HostFunction(store._store, ty._type, _host_adapter(store, ty._type, func,
                                            access_caller), getattr(func, "__name__", "host"))
        self._store = store

    @classmethod
    def _wrap(cls, store: Store, func: Function) -> Func:
        obj = cls.__new__(cls)
        obj._func, obj._store = func, store
        return obj

    @property
    def _extern(self) -> Function:
        return self._func

    def type(self, store: Store | Caller) -> FuncType:
        _as_store(store)
        return FuncType._wrap(self._func.type)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Func) and other._func is self._func

    def __hash__(self) -> int:
        return id(self._func)

    def __call__(self, store: Store | Caller, *params: Any) -> Any:
        store = _as_store(store)
        ftype = self._func.type
        if len(params) != len(ftype.params):
            which = "few" if len(params) < len(ftype.params) else "many"
            raise WasmjitTypeError(f"too {which} parameters provided: given {len(params)}, "
                                   f"expected {len(ftype.params)}")
        raw = [to_raw(store, t, v) for t, v in zip(ftype.params, params, strict=True)]
        results = _entering_wasm(lambda: self._func.call(raw), wasm=not isinstance(self._func, HostFunction))
        if not ftype.results:
            return None
        values = [from_raw(store, t, r) for t, r in zip(ftype.results, results, strict=True)]
        return values[0] if len(values) == 1 else values


class _HostError(BaseException):
    """Carries what a host function raised through the engine (a BaseException, so that no
    ``except Exception`` on the way stops it, and not a Trap, so that it collects no frames) to
    the API call that entered wasm, which raises the very object again: wasmtime-py's
    ``LAST_EXCEPTION``."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(error)
        self.error = error


def _entering_wasm(action: Callable[[], _T], wasm: bool = True) -> _T:
    """``action()``, which runs wasm (``wasm``) or a host function: a host function's exception
    comes out unchanged; a trap of wasm is marked as one, so that host functions it passes through
    let it collect the frames of the wasm that called them (wasmtime's backtrace spans every wasm
    activation)."""
    try:
        return action()
    except _HostError as carrier:
        error = carrier.error
    except Trap as trap:
        trap.from_wasm = True
        raise
    except RecursionError:
        if not wasm:
            raise
        # Recursion through host functions costs more Python frames per wasm call than the
        # engine budgets for: the Python stack runs out before the wasm call depth limit.
        error = Trap(TrapCode.STACK_OVERFLOW)
        error.from_wasm = True
    raise error  # outside the except clauses: the host's exception gets no __context__


def _host_adapter(store: Store, ftype: S.FuncType, func: Callable[..., Any],
                  access_caller: bool) -> Callable[[list], list]:
    """Wrap a Python callable as a raw-value host function; what it raises reaches the caller of
    the export unchanged, except traps of wasm it called (see ``_entering_wasm``) and
    RecursionError: wasm recursing through host functions runs out of Python stack, wherever in
    the chain that happens, and the API reports it as the trap "call stack exhausted"."""

    def host_call(raw_args: list) -> list:
        try:
            return _host_results(store, ftype, func, _call_host(store, ftype, func, access_caller, raw_args))
        except RecursionError:
            raise
        except Trap as trap:
            if trap.from_wasm:
                raise
            raise _HostError(trap) from None
        except BaseException as err:  # noqa: BLE001 - KeyboardInterrupt and SystemExit too
            raise _HostError(err) from None

    return host_call


def _call_host(store: Store, ftype: S.FuncType, func: Callable[..., Any], access_caller: bool,
               raw_args: list) -> Any:
    """Call ``func`` with the Python values of ``raw_args`` (after a Caller if it asked for one)."""
    args = [from_raw(store, t, r) for t, r in zip(ftype.params, raw_args, strict=True)]
    if not access_caller:
        return func(*args)
    caller = Caller(store, store._store.caller_instance)
    try:
        return func(caller, *args)
    finally:
        caller._valid = False


def _host_results(store: Store, ftype: S.FuncType, func: Callable[..., Any], value: Any) -> list:
    results = ftype.results
    if not results:
        if value is not None:
            raise WasmjitTypeError(f"host function {func!r} returned a value but has no results")
        return []
    values = [value] if len(results) == 1 else list(value) if isinstance(value, (list, tuple)) else None
    if values is None or len(values) != len(results):
        raise WasmjitTypeError(f"host function {func!r} must return {len(results)} values")
    return [to_raw(store, t, v) for t, v in zip(results, values, strict=True)]


class Memory:
    """A linear memory: ``Memory(store, MemoryType(Limits(1, None)))`` or an export."""

    def __init__(self, store: Store | Caller, ty: MemoryType) -> None:
        rt = _as_store(store)._store
        if not isinstance(ty, MemoryType):
            raise WasmjitTypeError(f"expected a MemoryType, found {type(ty).__name__}")
        limits = ty.limits
        if limits.min > MAX_PAGES:
            raise WasmjitError("minimum size is too large for this memory type's index type")
        if limits.max is not None and limits.max > MAX_PAGES:
            raise WasmjitError("maximum size is too large for this memory type's index type")
        if limits.max is not None and limits.max < limits.min:
            raise WasmjitError("maximum page size cannot be smaller than the minimum page size")
        rt.check_sizes([], [limits.min])
        self._mem = LinearMemory(limits.min, limits.max)
        self._mem.limits = rt.limits  # Store.set_limits bounds its growth too

    @classmethod
    def _wrap(cls, mem: LinearMemory) -> Memory:
        obj = cls.__new__(cls)
        obj._mem = mem
        return obj

    @property
    def _extern(self) -> LinearMemory:
        return self._mem

    def type(self, store: Store | Caller) -> MemoryType:
        _as_store(store)
        return MemoryType(Limits(self._mem.pages, self._mem.declared_max))

    def size(self, store: Store | Caller) -> int:
        _as_store(store)
        return self._mem.pages

    def data_len(self, store: Store | Caller) -> int:
        _as_store(store)
        return self._mem.size

    def data_ptr(self, store: Store | Caller) -> Any:
        _as_store(store)
        return self._mem.data_ptr()

    def get_buffer_ptr(self, store: Store | Caller, size: int | None = None, offset: int = 0) -> Any:
        """A ctypes ``c_ubyte`` array over ``size`` bytes (default: the rest of the memory) at
        ``offset``, without a copy, as wasmtime-py; unlike wasmtime-py, which hands out an array
        past the end, IndexError if that range is not all inside the memory."""
        data_len = self.data_len(store)
        if size is None:
            size = data_len - offset
        if offset < 0 or size < 0 or offset + size > data_len:
            raise IndexError("index out of range")
        return (ctypes.c_ubyte * size).from_address(self._mem.base + offset)

    def page_size(self, store: Store | Caller) -> int:
        _as_store(store)
        return PAGE_SIZE

    def page_size_log2(self, store: Store | Caller) -> int:
        _as_store(store)
        return PAGE_SIZE.bit_length() - 1

    def grow(self, store: Store | Caller, delta: int) -> int:
        """Add ``delta`` pages; the old size in pages. WasmjitError past the maximum."""
        _as_store(store)
        _check_int("delta", delta)
        if delta < 0:
            raise WasmjitError("cannot grow by negative amount")
        old = self._mem.grow(delta)
        if old < 0:
            raise WasmjitError(f"failed to grow memory by `{delta}`")
        return old

    def read(self, store: Store | Caller, start: int | None = 0, stop: int | None = None) -> bytearray:
        """A copy of ``memory[start:stop]``, with list-slice semantics as in wasmtime-py."""
        _as_store(store)
        return bytearray(self._mem.view[start:stop])

    def write(self, store: Store | Caller, value: bytes | bytearray, start: int | None = None) -> int:
        """Copy ``value`` to ``start`` (negative: from the end); IndexError if it does not fit."""
        size = self.data_len(store)
        start = slice(start, None).indices(size)[0]
        if start >= size:
            raise IndexError("index out of range")
        data = bytes(value)
        if start + len(data) > size:
            raise IndexError("index out of range")
        self._mem.write(data, start)
        return len(data)


def _check_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise WasmjitTypeError(f"expected an int for {name}, found {type(value).__name__}")


class Global:
    """A global: ``Global(store, GlobalType(ValType.i32(), True), 5)`` or an export."""

    def __init__(self, store: Store | Caller, ty: GlobalType, val: Any) -> None:
        if not isinstance(ty, GlobalType):
            raise WasmjitTypeError("expected a GlobalType")
        self._glob = GlobalInst(ty._type, to_raw(store, ty._type.valtype, val))
        _as_store(store)._store.host_globals.append(self._glob)

    @classmethod
    def _wrap(cls, glob: GlobalInst) -> Global:
        obj = cls.__new__(cls)
        obj._glob = glob
        return obj

    @property
    def _extern(self) -> GlobalInst:
        return self._glob

    def type(self, store: Store | Caller) -> GlobalType:
        _as_store(store)
        return GlobalType._wrap(self._glob.type)

    def value(self, store: Store | Caller) -> Any:
        return from_raw(store, self._glob.type.valtype, self._glob.value)

    def set_value(self, store: Store | Caller, val: Any) -> None:
        raw = to_raw(store, self._glob.type.valtype, val)
        if not self._glob.type.mutable:
            raise WasmjitError("immutable global cannot be set")
        self._glob.value = raw


class Table:
    """A table: ``Table(store, TableType(ValType.funcref(), Limits(1, None)), None)``."""

    def __init__(self, store: Store | Caller, ty: TableType, init: Any) -> None:
        if not isinstance(ty, TableType):
            raise WasmjitTypeError("expected a TableType")
        raw = to_raw(store, ty._elem, init)
        rt = _as_store(store)._store
        rt.check_sizes([ty.limits.min], [])
        self._table = TableInst(ty._elem, ty.limits.min, ty.limits.max, raw)
        self._table.limits = rt.limits  # Store.set_limits bounds its growth too
        rt.host_tables.append(self._table)

    @classmethod
    def _wrap(cls, table: TableInst) -> Table:
        obj = cls.__new__(cls)
        obj._table = table
        return obj

    @property
    def _extern(self) -> TableInst:
        return self._table

    def type(self, store: Store | Caller) -> TableType:
        _as_store(store)
        return TableType(ValType(self._table.elem), Limits(self._table.size, self._table.max))

    def size(self, store: Store | Caller) -> int:
        _as_store(store)
        return self._table.size

    def get(self, store: Store | Caller, idx: int) -> Any:
        """The element at ``idx``, or None when ``idx`` is out of range (as wasmtime-py)."""
        _as_store(store)
        _check_int("idx", idx)
        if not 0 <= idx < self._table.size:
            return None
        return from_raw(store, self._table.elem, self._table.elements[idx])

    def set(self, store: Store | Caller, idx: int, val: Any) -> None:
        """Set the element at ``idx``; out of range, the trap wasmtime-py raises there."""
        raw = to_raw(store, self._table.elem, val)
        _check_int("idx", idx)
        if not 0 <= idx < self._table.size:
            raise Trap(TrapCode.TABLE_OUT_OF_BOUNDS)
        self._table.elements[idx] = raw

    def grow(self, store: Store | Caller, amt: int, init: Any) -> int:
        """Add ``amt`` elements set to ``init``; the old size. WasmjitError past the maximum."""
        raw = to_raw(store, self._table.elem, init)
        _check_int("amt", amt)
        old = self._table.grow(amt, raw) if amt >= 0 else -1
        if old < 0:
            raise WasmjitError(f"failed to grow table by `{amt}`")
        return old


# --- Linker ----------------------------------------------------------------------------------


class _PerStore:
    """A store-independent function definition (``define_func``, WASI, unknown-import traps,
    a command module's exports): its type, and the Func made from it once per store."""

    def __init__(self, ftype: S.FuncType, make: Callable[[Store], Func]) -> None:
        self.type = ftype
        self._make = make
        self._made: weakref.WeakKeyDictionary[Store, Func] = weakref.WeakKeyDictionary()

    def __call__(self, store: Store) -> Func:
        func = self._made.get(store)
        if func is None:
            func = self._made[store] = self._make(store)
        return func


class Linker:
    """Resolves imports by (module, name), as wasmtime-py's ``Linker``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._defs: dict[tuple[str, str], Any] = {}  # items of one store (define, define_instance)
        self._host_funcs: dict[tuple[str, str], _PerStore] = {}
        self._allow_shadowing = False

    @property
    def allow_shadowing(self) -> bool:
        return self._allow_shadowing

    @allow_shadowing.setter
    def allow_shadowing(self, allow: bool) -> None:
        self._allow_shadowing = bool(allow)

    def _check_new(self, module: str, name: str) -> None:
        """Refuse a second definition unless shadowing is allowed; forget the one it replaces."""
        key = (module, name)
        if not self._allow_shadowing and (key in self._defs or key in self._host_funcs):
            raise WasmjitError(f"import of `{module}::{name}` defined twice")
        self._defs.pop(key, None)
        self._host_funcs.pop(key, None)

    def define(self, store: Store | Caller, module: str, name: str, item: Any) -> None:
        _as_store(store)
        if not isinstance(item, (Func, Memory, Global, Table)):
            raise WasmjitTypeError(f"cannot define {type(item).__name__} in a Linker")
        self._check_new(module, name)
        self._defs[(module, name)] = item

    def _define_host(self, module: str, name: str, definition: _PerStore) -> None:
        self._check_new(module, name)
        self._host_funcs[(module, name)] = definition

    def define_func(self, module: str, name: str, ty: FuncType, func: Callable[..., Any],
                    access_caller: bool = False) -> None:
        """A host function created per store when a module is instantiated."""
        if not isinstance(ty, FuncType):
            raise WasmjitTypeError("expected a FuncType")
        self._define_host(module, name, _PerStore(ty._type, lambda store: Func(store, ty, func,
                                                                                access_caller)))

    def define_wasi(self) -> None:
        """Define the WASI preview1 functions; they use the store's ``set_wasi`` configuration."""
        for name in WASI_FUNCTIONS:
            self._define_host(WASI_MODULE, name, _PerStore(WASI_FUNCTIONS[name][0],
                                                           functools.partial(_wasi_func, name)))

    def define_instance(self, store: Store | Caller, name: str, instance: Instance) -> None:
        if not isinstance(instance, Instance):
            raise WasmjitTypeError("expected an `Instance`")
        for export_name, item in instance.exports(store).items():
            self.define(store, name, export_name, item)

    def define_module(self, store: Store | Caller, name: str, module: Module) -> None:
        """Define ``module``'s exports under ``name`` as wasmtime does for WASI programs: a
        command (it exports ``_start``) gets a fresh instance for every call of one of its
        functions; a reactor is instantiated now, once, and its ``_initialize`` called."""
        _check_module(module)
        kind = _module_kind(module)
        if kind == "command":
            self._define_command(name, module)
            return
        instance = self.instantiate(store, module)
        init = instance.exports(store).get("_initialize")
        if init is not None:
            _check_initialize(init.type(store))
            init(store)
        self.define_instance(store, name, instance)

    def _define_command(self, name: str, module: Module) -> None:
        exports = module.exports
        for export in exports:
            kind = _kind_name(export.type)
            if kind != "func" and (export.name, kind) not in _COMMAND_EXTRAS:
                raise WasmjitError(f"command export '{export.name}' is not a function")
        pre = self.instantiate_pre(module)
        for export in exports:
            if isinstance(export.type, FuncType):
                self._define_host(name, export.name, _PerStore(export.type._type, functools.partial(
                    _command_func, pre, export.name, export.type)))

    def define_unknown_imports_as_traps(self, module: Module) -> None:
        """Define each function ``module`` imports that this linker lacks as one that traps when
        called (other kinds of unknown imports still fail to link)."""
        _check_module(module)
        for imp in self._unknown_imports(module):
            if isinstance(imp.type, FuncType):
                self._host_funcs[(imp.module, imp.name)] = _PerStore(imp.type._type, functools.partial(
                    _trapping_func, imp))

    def define_unknown_imports_as_default_values(self, store: Store | Caller, module: Module) -> None:
        """Define everything ``module`` imports that this linker lacks, in ``store``: functions
        that return zeros and null references, and memories, tables and globals of the imported
        types (sized at their minimum, zero / null)."""
        _check_module(module)
        store = _as_store(store)
        for imp in self._unknown_imports(module):
            self._defs[(imp.module, imp.name)] = _default_extern(store, imp)

    def _unknown_imports(self, module: Module) -> list[ImportType]:
        known = self._defs.keys() | self._host_funcs.keys()
        unknown: dict[tuple[str, str], ImportType] = {}
        for imp in module.imports:
            if (imp.module, imp.name) not in known:
                unknown.setdefault((imp.module, imp.name), imp)
        return list(unknown.values())

    def get(self, store: Store | Caller, module: str, name: str) -> Any:
        item = self._resolve(store, module, name)
        if item is None:
            raise WasmjitError("item not defined in linker")
        return item

    def get_default(self, store: Store | Caller, name: str) -> Func:
        """The function a WASI program's runner calls: the export named "" of ``name``, else its
        ``_start``, else a function that does nothing."""
        for field, what in (("", "default export"), ("_start", "`_start`")):
            item = self._resolve(store, name, field)
            if item is not None:
                if not isinstance(item, Func):
                    raise WasmjitError(f"{what} in '{name}' is not a function")
                return item
        return Func(_as_store(store), FuncType([], []), lambda: None)

    def _resolve(self, store: Store | Caller, module: str, name: str) -> Any:
        store = _as_store(store)
        key = (module, name)
        item = self._defs.get(key)
        if item is None and key in self._host_funcs:
            item = self._host_funcs[key](store)
        return item

    def instantiate(self, store: Store | Caller, module: Module) -> Instance:
        return self.instantiate_pre(module).instantiate(store)

    def instantiate_pre(self, module: Module) -> InstancePre:
        """Resolve ``module``'s imports now (LinkError if one is missing, then if one has another
        type); ``instantiate(store)`` on the result then only creates the instance."""
        _check_module(module)
        vmod = module._vmod.module
        definitions = [self._definition(imp) for imp in vmod.imports]
        for imp, item in zip(vmod.imports, definitions, strict=True):
            if isinstance(item, _PerStore):
                _check_host_import(vmod, imp, item.type)
            else:
                check_import(vmod, imp, item._extern)
        return InstancePre(module, definitions)

    def _definition(self, imp: S.Import) -> Any:
        key = (imp.module, imp.name)
        item = self._defs.get(key) or self._host_funcs.get(key)
        if item is None:
            raise LinkError(f"unknown import: `{imp.module}::{imp.name}` has not been defined")
        return item


def _check_host_import(module: S.Module, imp: S.Import, ftype: S.FuncType) -> None:
    """check_import for a store-independent function not made yet: only its type is known."""
    expected = module.types[imp.desc] if imp.kind == S.FUNC else None
    if expected != ftype:
        why = f"expected {expected}, found {ftype}" if expected is not None else f"expected a {imp.kind}"
        raise LinkError(f"incompatible import type for `{imp.module}::{imp.name}`: {why}")


class InstancePre:
    """A module whose imports a Linker has resolved (``Linker.instantiate_pre``)."""

    def __init__(self, module: Module, definitions: list[Any]) -> None:
        self._module = module
        self._definitions = definitions  # per import: an extern of one store, or a _PerStore

    @property
    def module(self) -> Module:
        return self._module

    def instantiate(self, store: Store | Caller) -> Instance:
        store = _as_store(store)
        imports = [d(store) if isinstance(d, _PerStore) else d for d in self._definitions]
        return Instance(store, self._module, imports)


# Non-function exports a command module may have (wasmtime allows these for toolchain reasons).
_COMMAND_EXTRAS = {("memory", "memory"), ("__indirect_function_table", "table"), ("table", "table"),
                   ("__data_end", "global"), ("__heap_base", "global"), ("__dso_handle", "global"),
                   ("__rtti_base", "global")}


def _kind_name(ty: Any) -> str:
    return {MemoryType: "memory", TableType: "table", GlobalType: "global"}.get(type(ty), "func")


def _check_module(module: Any) -> None:
    if not isinstance(module, Module):
        raise WasmjitTypeError("expected a `Module`")


def _module_kind(module: Module) -> str:
    """"command" (exports ``_start``) or "reactor" (exports ``_initialize``, or neither)."""
    exports = {e.name: e.type for e in module.exports}
    start, init = exports.get("_start"), exports.get("_initialize")
    if start is not None and init is not None:
        raise WasmjitError("Program cannot be both a Command and a Reactor")
    if start is not None and not isinstance(start, FuncType):
        raise WasmjitError("`_start` must be a function")
    if init is not None and not isinstance(init, FuncType):
        raise WasmjitError("`_initialize` must be a function")
    return "command" if start is not None else "reactor"


def _check_initialize(ty: FuncType) -> None:
    """A reactor's ``_initialize`` takes and returns nothing (wasmtime's error otherwise)."""
    for what, types in (("parameters", ty.params), ("results", ty.results)):
        if types:
            raise WasmjitError(f"calling the Reactor initialization function\n\nCaused by:\n"
                               f"    0: type mismatch with {what}\n    1: expected 0 types, found "
                               f"{len(types)}\n")


def _command_func(pre: InstancePre, name: str, ty: FuncType, store: Store) -> Func:
    """A command module's export: each call runs in a new instance."""
    return Func(store, ty, lambda *args: pre.instantiate(store).exports(store)[name](store, *args))


def _wasi_func(name: str, store: Store) -> Func:
    """A WASI function on raw values, working on the calling instance's memory."""
    host = raw_host(store._wasi_context, store._caller_memory, name)
    return Func._wrap(store, HostFunction(store._store, WASI_FUNCTIONS[name][0], host, name))


def _trapping_func(imp: ImportType, store: Store) -> Func:
    """A function that traps, as wasm does, with wasmtime's message for an unknown import."""
    message = f"unknown import: `{imp.module}::{imp.name}` has not been defined"

    def trap(args: list) -> list:
        raise Trap(message)

    return Func._wrap(store, HostFunction(store._store, imp.type._type, trap, imp.name))


def _default_extern(store: Store, imp: ImportType) -> Any:
    """A zero / null / minimum-size stand-in for ``imp`` in ``store``."""
    ty = imp.type
    if isinstance(ty, FuncType):
        results = ty._type.results
        host = HostFunction(store._store, ty._type, lambda args: [DEFAULTS[t] for t in results], imp.name)
        return Func._wrap(store, host)
    if isinstance(ty, MemoryType):
        return Memory(store, ty)
    if isinstance(ty, TableType):
        return Table(store, ty, None)
    return Global(store, ty, from_raw(store, ty.content.name, DEFAULTS[ty.content.name]))

__all__ = [
    "Caller", "Config", "Engine", "ExportType", "Func", "FuncStats", "FuncType", "Global",
    "GlobalType", "ImportType", "Instance", "InstanceExports", "InstancePre", "Limits", "Linker",
    "Memory", "MemoryType", "Module", "PAGE_SIZE", "Store", "Table", "TableType", "Val", "ValType",
    "WasiConfig",
]
