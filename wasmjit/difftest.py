"""``wasmjit diff``: run one module on every wasmjit tier and on wasmtime-py, and compare.

Each engine runs in its own process (``python -m wasmjit.difftest --worker ENGINE SPEC OUT``, or a
fork of an already-loaded process for the fuzzer), under a timeout, so a segfault or a hang of one
engine is that engine's outcome ("crash (signal 11)", "timeout") and the comparison goes on.

A worker records what happened as ordered *rows* (key, value text), written to OUT as JSON lines
as they happen, so a crash leaves everything up to it:

- ``compile``: ok / error (message as a note); ``instantiate``: ok / trap KIND / link error / error;
- ``call NAME(ARGS)``: the results, bit-exact except NaNs, which are compared by class as the spec
  tests do (``nan:canonical``, ``nan:arithmetic``; a NaN without the quiet bit keeps its bits) /
  ``trap KIND`` (wasmtime's trap codes; wasmjit's UNDEFINED_ELEMENT counts as TABLE_OUT_OF_BOUNDS,
  which is what wasmtime reports for it) / ``exit N`` (WASI proc_exit);
- ``exit`` in WASI command mode (``_start``): ``exit N`` (proc_exit), ``returned`` or a trap;
- ``memory NAME``: pages and SHA-256 of the bytes, ``global NAME``: value, ``table NAME``: size
  and null entries, for every exported memory, global and table after the last call;
- ``stdout``/``stderr``: what the guest wrote (size, hash and the start of it).

What is called: ``--invoke NAME ARGS`` calls that export; otherwise a module exporting ``_start``
runs as a WASI command (arguments, ``--dir`` and ``--env`` as ``wasmjit run``). A module with
neither gets every exported function whose parameters are all numeric called, in export order,
each with the tuples of :data:`DEFAULT_ARGS` (all zeros, small distinct positives, all minus
one, the most negative integers and infinities), on one instance, so state carries from call to
call; a mutable i32 global exported as ``__fuel`` (wasm-smith's termination fuel, exported so by
the fuzzer) is set back to its initial value before each call. After a stack overflow no further call
is made and the final state is not compared (how deep each engine got before the overflow, and so
what it had written, legitimately differs).

Every engine runs WASI with the same configuration (guest stdout/stderr captured to files,
directories copied per engine so one engine's writes cannot reach another's run) and links
unknown function imports as trapping functions. wasmtime-py is imported only inside the wasmtime
worker; the engine never imports it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import WasmjitError

REFERENCE = "wasmtime"
DEFAULT_TIMEOUT = 60.0
NUMERIC = ("i32", "i64", "f32", "f64")
DONE = "done"  # the last row of a worker that finished
USAGE = "usage: "  # a row value saying the request itself was wrong (no such export, bad argument)
FUEL_GLOBAL = "__fuel"  # reset before each call (see run_plan)


def _small(i: int, t: str) -> int | float:
    return i + 1 if t in ("i32", "i64") else i + 1.5


# Argument tuples for exported functions when neither --invoke nor _start says what to run:
# (label, value of the i-th parameter of type t).
DEFAULT_ARGS: tuple[tuple[str, Callable[[int, str], int | float]], ...] = (
    ("zeros", lambda i, t: 0 if t in ("i32", "i64") else 0.0),
    ("small", _small),
    ("minus one", lambda i, t: -1 if t in ("i32", "i64") else -1.0),
    ("extremes", lambda i, t: {"i32": -(1 << 31), "i64": -(1 << 63)}.get(t, float("inf"))),
)


class UsageError(WasmjitError):
    """The diff could not be run as asked (bad tier, unreadable module, no such export...)."""


def available_tiers() -> tuple[str, ...]:
    from . import api

    return tuple(api.AVAILABLE_TIERS)


def parse_tiers(text: str | None) -> list[str]:
    """``--tiers a,b``: wasmjit tiers to compare (default: all available); ``wasmtime`` is always
    the reference and may be listed too."""
    available = available_tiers()
    if text is None:
        return list(available)
    tiers: list[str] = []
    for name in (t.strip() for t in text.split(",")):
        if not name or name == REFERENCE:
            continue
        if name not in available:
            raise UsageError(f"unknown or unavailable tier {name!r}: available are {', '.join(available)}")
        if name not in tiers:
            tiers.append(name)
    if not tiers:
        raise UsageError("--tiers names no wasmjit tier")
    return tiers


# --- values ----------------------------------------------------------------------------------

F32_QUIET, F64_QUIET = 0x0040_0000, 0x0008_0000_0000_0000
F32_EXP, F64_EXP = 0x7F80_0000, 0x7FF0_0000_0000_0000
F32_FRAC, F64_FRAC = 0x007F_FFFF, 0x000F_FFFF_FFFF_FFFF


def nan_class(bits: int, width: int) -> str | None:
    """For a NaN's bits: ``canonical`` (only the quiet bit), ``arithmetic`` (quiet bit set) or
    ``0x...`` (its exact bits: no arithmetic produces such a NaN, only copies); None if not a NaN."""
    exp, frac, quiet = (F32_EXP, F32_FRAC, F32_QUIET) if width == 32 else (F64_EXP, F64_FRAC, F64_QUIET)
    if bits & exp != exp or not bits & frac:
        return None
    if bits & frac == quiet:
        return "canonical"
    if bits & quiet:
        return "arithmetic"
    return f"{bits:#0{width // 4 + 2}x}"


def format_value(valtype: str, raw: Any) -> str:
    """A value as compared: i32/i64 signed decimal, floats from their bits (``raw``: the bit
    pattern) with NaNs by class, references as null or not (``raw``: a bool, True = non-null)."""
    if valtype in ("i32", "i64"):
        bits = 32 if valtype == "i32" else 64
        value = raw & ((1 << bits) - 1)
        return f"{valtype}:{value - (1 << bits) if value >> (bits - 1) else value}"
    if valtype in ("f32", "f64"):
        width = 32 if valtype == "f32" else 64
        nan = nan_class(raw, width)
        if nan is not None:
            return f"{valtype}:nan:{nan}"
        if width == 32:
            return f"f32:{struct.unpack('<f', struct.pack('<I', raw))[0]!r}"
        return f"f64:{struct.unpack('<d', struct.pack('<Q', raw))[0]!r}"
    return f"{valtype}:{'non-null' if raw else 'null'}"


def format_results(values: Sequence[str]) -> str:
    return ", ".join(values) if values else "ok (no results)"


def f64_bits(x: float) -> int:
    return struct.unpack("<Q", struct.pack("<d", x))[0]


def f32_bits_of_float(x: float) -> int:
    return struct.unpack("<I", struct.pack("<f", x))[0]


def parse_arg(text: str, valtype: str) -> int | float:
    try:
        if valtype in ("i32", "i64"):
            value = int(text, 0)
            bits = 32 if valtype == "i32" else 64
            if not -(1 << (bits - 1)) <= value < (1 << bits):
                raise ValueError
            return value
        if valtype in ("f32", "f64"):
            return float(text)
    except ValueError:
        raise UsageError(f"invalid {valtype} argument: {text!r}") from None
    raise UsageError(f"cannot pass a {valtype} argument on the command line")


def arg_text(value: int | float) -> str:
    return repr(value) if isinstance(value, float) else str(value)


# --- workers ---------------------------------------------------------------------------------


class Recorder:
    """Appends rows to the result file, one JSON line each, unbuffered (a crash keeps them)."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def row(self, key: str, value: str, note: str | None = None) -> None:
        line = json.dumps([key, value] if note is None else [key, value, note]) + "\n"
        os.write(self.fd, line.encode())


class _Adapter:
    """What differs between engines; the run itself (:func:`run_plan`) is shared."""

    api: Any

    def make_engine(self, spec: dict) -> Any:
        raise NotImplementedError

    def call(self, store: Any, func: Any, params: list[str], args: list[int | float]) -> list[str]:
        raise NotImplementedError

    def global_text(self, store: Any, glob: Any) -> str:
        raise NotImplementedError

    def exit_code(self, exc: BaseException) -> int | None:
        raise NotImplementedError

    def describe(self, exc: BaseException) -> tuple[str, str]:
        """An exception from loading or running as (compared value, note shown beside it)."""
        raise NotImplementedError

    def valtype(self, t: Any) -> str:
        return str(t)


class WasmjitAdapter(_Adapter):
    def __init__(self, tier: str) -> None:
        from . import api
        from .errors import LinkError, Trap, TrapCode
        from .runtime import numerics
        from .wasi import ExitTrap

        self.api, self.tier = api, tier
        self._trap, self._link, self._exit, self._codes = Trap, LinkError, ExitTrap, TrapCode
        self._numerics = numerics

    def make_engine(self, spec: dict) -> Any:
        config = self.api.Config()
        config.tier = self.tier
        if spec.get("tier_up"):
            config.tier_up_calls, config.tier_up_loops = spec["tier_up"]
        return self.api.Engine(config)

    def _raw_out(self, t: str, value: Any) -> Any:
        if t == "f32":
            return self._numerics.float_to_f32(value)
        if t == "f64":
            return f64_bits(value)
        if t in ("funcref", "externref"):
            return value is not None
        return value

    def call(self, store: Any, func: Any, params: list[str], args: list[int | float]) -> list[str]:
        results = [t.name for t in func.type(store).results]
        out = func(store, *args)
        values = [] if not results else [out] if len(results) == 1 else list(out)
        return [format_value(t, self._raw_out(t, v)) for t, v in zip(results, values, strict=True)]

    def global_text(self, store: Any, glob: Any) -> str:
        t = glob.type(store).content.name
        return format_value(t, self._raw_out(t, glob.value(store)))

    def exit_code(self, exc: BaseException) -> int | None:
        return exc.code if isinstance(exc, self._exit) else None

    def describe(self, exc: BaseException) -> tuple[str, str]:
        if isinstance(exc, self._trap):
            code = exc.trap_code
            if code is self._codes.UNDEFINED_ELEMENT:  # wasmtime: a table out of bounds
                code = self._codes.TABLE_OUT_OF_BOUNDS
            return (f"trap {code.name}" if code is not None else "trap (host)"), exc.reason
        if isinstance(exc, self._link):
            return "link error", str(exc)
        if isinstance(exc, WasmjitError):
            return "error", str(exc)
        return f"internal error: {type(exc).__name__}", _one_line(str(exc))


class WasmtimeAdapter(_Adapter):
    """wasmtime-py, with values read from the raw ``wasmtime_val_t`` (its Python f32 results go
    through a float conversion that would set a signalling NaN's quiet bit)."""

    def __init__(self) -> None:
        import wasmtime
        from wasmtime import _ffi as ffi

        self.api, self._ffi = wasmtime, ffi
        self._kinds = {"i32": ffi.WASMTIME_I32.value, "i64": ffi.WASMTIME_I64.value,
                       "f32": ffi.WASMTIME_F32.value, "f64": ffi.WASMTIME_F64.value,
                       "funcref": ffi.WASMTIME_FUNCREF.value, "externref": ffi.WASMTIME_EXTERNREF.value}
        self._names = {v: k for k, v in self._kinds.items()}

    def make_engine(self, spec: dict) -> Any:
        config = self.api.Config()
        # Compile on this thread: in a fork of a process that already used wasmtime, its
        # compilation thread pool does not exist and a parallel compile waits forever.
        config.parallel_compilation = False
        return self.api.Engine(config)

    def _text(self, store: Any, raw: Any) -> str:
        t = self._names.get(raw.kind, f"kind{raw.kind}")
        if t == "i32" or t == "f32":
            return format_value(t, raw.of.i32 & 0xFFFF_FFFF)
        if t == "i64" or t == "f64":
            return format_value(t, raw.of.i64 & 0xFFFF_FFFF_FFFF_FFFF)
        return format_value(t, self.api.Val._from_raw(store, raw).value is not None)

    def call(self, store: Any, func: Any, params: list[str], args: list[int | float]) -> list[str]:
        import ctypes

        from wasmtime._func import enter_wasm

        ffi = self._ffi
        nresults = len(func.type(store).results)
        params_ptr = (ffi.wasmtime_val_t * len(args))()
        for i, (t, v) in enumerate(zip(params, args, strict=True)):
            raw = params_ptr[i]
            raw.kind = self._kinds[t]
            if t == "i32":
                raw.of.i32 = _signed(v, 32)
            elif t == "i64":
                raw.of.i64 = _signed(v, 64)
            elif t == "f32":
                raw.of.i32 = _signed(f32_bits_of_float(v), 32)
            else:
                raw.of.i64 = _signed(f64_bits(v), 64)
        results_ptr = (ffi.wasmtime_val_t * nresults)()
        with enter_wasm(store) as trap:
            error = ffi.wasmtime_func_call(store._context(), ctypes.byref(func._func), params_ptr,
                                           len(args), results_ptr, nresults, trap)
            if error:
                raise self.api.WasmtimeError._from_ptr(error)
        return [self._text(store, results_ptr[i]) for i in range(nresults)]

    def global_text(self, store: Any, glob: Any) -> str:
        import ctypes

        raw = self._ffi.wasmtime_val_t()
        self._ffi.wasmtime_global_get(store._context(), ctypes.byref(glob._global), ctypes.byref(raw))
        return self._text(store, raw)

    def exit_code(self, exc: BaseException) -> int | None:
        return exc.code if isinstance(exc, self.api.ExitTrap) else None

    def describe(self, exc: BaseException) -> tuple[str, str]:
        api = self.api
        if isinstance(exc, api.Trap):
            code = exc.trap_code
            return (f"trap {code.name}" if code is not None else "trap (host)"), _one_line(exc.message)
        if isinstance(exc, api.WasmtimeError):
            message = str(exc)
            if any(m in message for m in ("unknown import", "incompatible import", "types incompatible")):
                return "link error", _one_line(message)
            return "error", _one_line(message)
        return f"internal error: {type(exc).__name__}", _one_line(str(exc))


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[:3])[:300]


def make_adapter(engine: str) -> _Adapter:
    if engine == REFERENCE:
        return WasmtimeAdapter()
    return WasmjitAdapter(engine)


def _guarded(adapter: _Adapter, rec: Recorder, key: str, action: Callable[[], Any]) -> tuple[bool, Any]:
    """Run ``action``; on an exception record ``key`` as its description (or the exit) and return
    (False, exit code or None)."""
    try:
        return True, action()
    except BaseException as exc:  # noqa: BLE001 - any engine failure is an outcome to compare
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        code = adapter.exit_code(exc)
        if code is not None:
            rec.row(key, f"exit {code}")
            return False, code
        value, note = adapter.describe(exc)
        if value.startswith("internal error"):  # where in the engine it went wrong
            frames = traceback.extract_tb(exc.__traceback__)
            where = f" (at {Path(frames[-1].filename).name}:{frames[-1].lineno})" if frames else ""
            note = f"{_one_line(str(exc))}{where}"
        rec.row(key, value, note)
        return False, value


def function_exports(module: Any, adapter: _Adapter) -> list[tuple[str, list[str]]]:
    """(name, param types) of every exported function, in export order."""
    out = []
    for export in module.exports:
        ty = export.type
        if isinstance(ty, adapter.api.FuncType):
            out.append((export.name, [adapter.valtype(t) for t in ty.params]))
    return out


def default_calls(exports: Iterable[tuple[str, list[str]]]) -> list[tuple[str, list[str], list[int | float]]]:
    """The calls made when no --invoke/_start says what to run (see :data:`DEFAULT_ARGS`)."""
    calls: list[tuple[str, list[str], list[int | float]]] = []
    for name, params in exports:
        if any(t not in NUMERIC for t in params):
            continue
        seen: list[list[int | float]] = []
        for _label, make in DEFAULT_ARGS:
            args = [make(i, t) for i, t in enumerate(params)]
            if args not in seen:
                seen.append(args)
                calls.append((name, params, args))
    return calls


def run_plan(adapter: _Adapter, spec: dict, rec: Recorder) -> None:  # noqa: C901 - one linear story
    """Load, instantiate and run the module as ``spec`` says, recording rows."""
    api = adapter.api
    ok, engine = _guarded(adapter, rec, "engine", lambda: adapter.make_engine(spec))
    if not ok:
        return
    ok, module = _guarded(adapter, rec, "compile", lambda: api.Module.from_file(engine, spec["module"]))
    if not ok:
        return
    rec.row("compile", "ok")
    if spec.get("compile_only"):
        return
    store = api.Store(engine)

    def configure() -> None:
        wasi = api.WasiConfig()
        wasi.argv = [spec["argv0"], *spec["wasi_args"]]
        wasi.env = [tuple(pair) for pair in spec["env"]]
        for host, guest in spec["dirs"]:
            wasi.preopen_dir(host, guest)
        wasi.stdout_file = spec["stdout"]
        wasi.stderr_file = spec["stderr"]
        store.set_wasi(wasi)

    ok, _ = _guarded(adapter, rec, "wasi", configure)
    if not ok:
        return
    linker = api.Linker(engine)
    linker.define_wasi()
    linker.define_unknown_imports_as_traps(module)
    ok, instance = _guarded(adapter, rec, "instantiate", lambda: linker.instantiate(store, module))
    if not ok:
        return
    rec.row("instantiate", "ok")
    exports = instance.exports(store)
    refuel = _fuel_reset(adapter, store, exports)
    funcs = function_exports(module, adapter)
    params_of = dict(funcs)
    stopped = None
    if spec["invoke"] is not None:
        name = spec["invoke"]
        if name not in params_of:
            rec.row("call", f"{USAGE}no exported function named `{name}`")
            return
        params = params_of[name]
        if len(params) != len(spec["args"]):
            rec.row("call", f"{USAGE}`{name}` takes {len(params)} argument(s), {len(spec['args'])} given")
            return
        try:
            args = [parse_arg(text, t) for text, t in zip(spec["args"], params, strict=True)]
        except UsageError as err:
            rec.row("call", f"{USAGE}{err}")
            return
        calls = [(name, params, args)]
    elif params_of.get("_start") == []:
        ok, result = _guarded(adapter, rec, "exit", lambda: adapter.call(store, exports["_start"], [], []))
        if ok:
            rec.row("exit", "returned")
        calls = []
    else:
        calls = default_calls(funcs)
    for name, params, args in calls:
        key = f"call {_show(name)}({', '.join(arg_text(a) for a in args)})"
        refuel()
        ok, result = _guarded(adapter, rec, key,
                              lambda name=name, params=params, args=args:
                              adapter.call(store, exports[name], params, args))
        if ok:
            rec.row(key, format_results(result))
        elif result == "trap STACK_OVERFLOW":
            stopped = "not compared after a stack overflow"
            break
        elif isinstance(result, int):  # proc_exit: the instance is finished
            break
    if stopped:
        rec.row("state", stopped)
        return
    record_state(adapter, store, module, exports, rec)


def _show(name: str) -> str:
    """An export name as shown in a row key (quoted if empty or not printable)."""
    return name if name.isprintable() and name and " " not in name else repr(name)


def _fuel_reset(adapter: _Adapter, store: Any, exports: Any) -> Callable[[], None]:
    """If the module exports a mutable i32 global ``__fuel`` (the fuzzer exports wasm-smith's
    termination fuel so), a function that sets it back to its value after instantiation: each call
    then gets the same budget instead of the first one exhausting it for all."""
    fuel = exports.get(FUEL_GLOBAL)
    if not isinstance(fuel, adapter.api.Global):
        return lambda: None
    ty = fuel.type(store)
    if not ty.mutable or str(ty.content) != "i32":
        return lambda: None
    initial = fuel.value(store)
    return lambda: fuel.set_value(store, initial)


def record_state(adapter: _Adapter, store: Any, module: Any, exports: Any, rec: Recorder) -> None:
    api = adapter.api
    for export in module.exports:
        item = exports[export.name]
        if isinstance(item, api.Memory):
            key = f"memory {_show(export.name)}"
            _guarded(adapter, rec, key, lambda item=item, key=key: rec.row(key, _memory_text(store, item)))
        elif isinstance(item, api.Global):
            key = f"global {_show(export.name)}"
            _guarded(adapter, rec, key,
                     lambda item=item, key=key: rec.row(key, adapter.global_text(store, item)))
        elif isinstance(item, api.Table):
            key = f"table {_show(export.name)}"
            _guarded(adapter, rec, key, lambda item=item, key=key: rec.row(key, _table_text(store, item)))


def _memory_text(store: Any, mem: Any) -> str:
    data = mem.read(store, 0, mem.data_len(store))
    return f"{mem.size(store)} pages, sha256 {hashlib.sha256(data).hexdigest()[:16]}"


def _table_text(store: Any, table: Any) -> str:
    size = table.size(store)
    if size > 100_000:
        return f"size {size}"
    nulls = sum(1 for i in range(size) if _is_null(table.get(store, i)))
    return f"size {size}, {nulls} null"


def _is_null(ref: Any) -> bool:
    """A null reference: None, or (wasmtime-py's Table.get for a null) a Val holding None."""
    return ref is None or (type(ref).__name__ == "Val" and getattr(ref, "value", 0) is None)


def worker_main(engine: str, spec_path: str, out_path: str) -> int:
    """One engine's run (in its own process): rows to ``out_path``, then the ``done`` row."""
    spec = json.loads(Path(spec_path).read_text())
    rec = Recorder(out_path)
    try:
        adapter = make_adapter(engine)
    except Exception as exc:  # noqa: BLE001 - e.g. wasmtime not installed
        rec.row("engine", f"internal error: {type(exc).__name__}", _one_line(str(exc)))
        rec.row(DONE, "")
        return 0
    run_plan(adapter, spec, rec)
    rec.row(DONE, "")
    return 0


# --- running the engines -------------------------------------------------------------------


@dataclass
class EngineResult:
    engine: str
    outcome: str  # "ok", "crash (signal N)", "timeout", "worker failed (exit N)"
    rows: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    log: str = ""  # the worker's own stderr (a Python traceback when it failed)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.outcome == "ok"


@dataclass
class _Job:
    engine: str
    spec_path: Path
    out_path: Path
    log_path: Path
    stdout_path: Path
    stderr_path: Path
    started: float = 0.0
    pid: int | None = None
    proc: subprocess.Popen | None = None
    status: int | None = None  # the wait status (fork) or return code (spawn)
    timed_out: bool = False


def _prepare(engine: str, work: Path, module: Path, argv0: str, invoke: str | None, args: Sequence[str],
             wasi_args: Sequence[str], env: Sequence[tuple[str, str]], dirs: Sequence[tuple[str, str]],
             tier_up: tuple[int, int] | None, compile_only: bool = False) -> _Job:
    base = work / engine
    base.mkdir()
    copies = []
    for i, (host, guest) in enumerate(dirs):
        copy = base / f"dir{i}"
        shutil.copytree(host, copy, symlinks=True)
        copies.append((str(copy), guest))
    job = _Job(engine, base / "spec.json", base / "rows.jsonl", base / "worker.log",
               base / "stdout", base / "stderr")
    spec = {"module": str(module), "argv0": argv0, "invoke": invoke, "args": list(args),
            "wasi_args": list(wasi_args), "env": [list(p) for p in env], "dirs": copies,
            "stdout": str(job.stdout_path), "stderr": str(job.stderr_path),
            "tier_up": list(tier_up) if tier_up else None, "compile_only": compile_only}
    job.spec_path.write_text(json.dumps(spec))
    job.stdout_path.touch()
    job.stderr_path.touch()
    return job


def _start_spawn(job: _Job) -> None:
    with open(job.log_path, "wb") as log:
        job.proc = subprocess.Popen(
            [sys.executable, "-m", "wasmjit.difftest", "--worker", job.engine, str(job.spec_path),
             str(job.out_path)], stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True)
    job.started = time.monotonic()


def _start_fork(job: _Job) -> None:
    """Fork this (already loaded) process to run the worker: no interpreter start-up per run."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 3
        try:
            # (faulthandler, if the parent enabled it, stays: disabling it would put back the
            # handlers from before it was enabled, over those wasmtime may have installed since,
            # and wasmtime's traps would then kill the worker with SIGILL.)
            os.setsid()
            null = os.open(os.devnull, os.O_RDONLY)
            log = os.open(job.log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(null, 0)
            os.dup2(log, 1)
            os.dup2(log, 2)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = worker_main(job.engine, str(job.spec_path), str(job.out_path))
        except BaseException:  # noqa: BLE001 - report and leave, whatever happened
            try:
                traceback.print_exc()
                sys.stderr.flush()
            except BaseException:  # noqa: BLE001
                pass
        finally:
            os._exit(code)
    job.pid = pid
    job.started = time.monotonic()


def _poll(job: _Job) -> bool:
    """Whether the job has ended (its status recorded)."""
    if job.proc is not None:
        rc = job.proc.poll()
        if rc is None:
            return False
        job.status = rc
        return True
    assert job.pid is not None
    pid, status = os.waitpid(job.pid, os.WNOHANG)
    if pid == 0:
        return False
    job.status = status
    return True


def _kill(job: _Job) -> None:
    pid = job.proc.pid if job.proc is not None else job.pid
    try:
        os.killpg(pid, signal.SIGKILL)  # the worker leads its own session: nothing is left behind
    except (ProcessLookupError, PermissionError):
        pass
    if job.proc is not None:
        job.proc.wait()
        job.status = job.proc.returncode
    else:
        _, job.status = os.waitpid(job.pid, 0)
    job.timed_out = True


def _wait_all(jobs: list[_Job], timeout: float) -> None:
    pending = list(jobs)
    delay = 0.001
    try:
        while pending:
            now = time.monotonic()
            for job in list(pending):
                if _poll(job):
                    pending.remove(job)
                elif now - job.started > timeout:
                    _kill(job)
                    pending.remove(job)
            if pending:
                time.sleep(delay)
                delay = min(delay * 2, 0.02)
    finally:
        for job in pending:  # interrupted: leave no worker running
            _kill(job)


def _outcome(job: _Job) -> str:
    if job.timed_out:
        return "timeout"
    status = job.status or 0
    if job.proc is not None:  # a return code: negative for a signal
        if status < 0:
            return f"crash (signal {-status})"
        code = status
    elif os.WIFSIGNALED(status):
        return f"crash (signal {os.WTERMSIG(status)})"
    else:
        code = os.WEXITSTATUS(status)
    return "ok" if code == 0 else f"worker failed (exit {code})"


def _stream_text(data: bytes) -> str:
    if not data:
        return "empty"
    preview = data[:40].decode("utf-8", "replace")
    more = "…" if len(data) > 40 else ""
    return f"{len(data)} bytes, sha256 {hashlib.sha256(data).hexdigest()[:12]}: {preview!r}{more}"


def _collect(job: _Job) -> EngineResult:
    result = EngineResult(job.engine, _outcome(job), seconds=time.monotonic() - job.started)
    done = False
    if job.out_path.exists():
        for line in job.out_path.read_text(errors="replace").splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue  # a line cut short by a crash
            if item[0] == DONE:
                done = True
                continue
            result.rows[item[0]] = item[1]
            if len(item) > 2 and item[2]:
                result.notes[item[0]] = item[2]
    if result.ok and not done:
        result.outcome = "worker failed (no result)"
    for name, path in (("stdout", job.stdout_path), ("stderr", job.stderr_path)):
        result.rows[name] = _stream_text(path.read_bytes())
    if job.log_path.exists():
        result.log = job.log_path.read_text(errors="replace")[-4000:]
    return result


def run_engines(module: str | os.PathLike, engines: Sequence[str], *, invoke: str | None = None,
                args: Sequence[str] = (), wasi_args: Sequence[str] = (),
                env: Sequence[tuple[str, str]] = (), dirs: Sequence[tuple[str, str]] = (),
                timeout: float = DEFAULT_TIMEOUT, launcher: str = "spawn",
                tier_up: tuple[int, int] | None = None, argv0: str | None = None,
                compile_only: bool = False) -> dict[str, EngineResult]:
    """Run the module on each engine (a tier name or ``wasmtime``), concurrently, each in its own
    process under ``timeout`` seconds; ``launcher``: ``spawn`` (a fresh interpreter) or ``fork``."""
    start = {"spawn": _start_spawn, "fork": _start_fork}[launcher]
    module = Path(module)
    with tempfile.TemporaryDirectory(prefix="wasmjit-diff-") as tmp:
        work = Path(tmp)
        jobs = [_prepare(e, work, module.resolve(), argv0 or str(module), invoke, args, wasi_args, env,
                         dirs, tier_up, compile_only) for e in engines]
        started: list[_Job] = []
        try:
            for job in jobs:
                start(job)
                started.append(job)
        finally:
            _wait_all(started, timeout)
        return {job.engine: _collect(job) for job in jobs}


# --- comparison ----------------------------------------------------------------------------


@dataclass
class Difference:
    key: str  # the row ("outcome" for how the engine process ended)
    values: dict[str, str | None]  # per engine; None: the engine has no such row
    aspect: str  # what kind of difference: outcome kind or the row's category
    deviants: tuple[str, ...]  # engines that differ from the reference (or from the majority)


def _aspect(key: str) -> str:
    return key.split(" ", 1)[0]


def _deviants(values: dict[str, str | None], reference: str) -> tuple[str, ...]:
    present = {e: v for e, v in values.items() if v is not None}
    if reference in present:
        expected = present[reference]
    else:  # the most common value
        counts: dict[str, int] = {}
        for v in present.values():
            counts[v] = counts.get(v, 0) + 1
        expected = max(counts, key=lambda v: counts[v]) if counts else None
    return tuple(e for e, v in values.items() if v != expected)


def compare(results: dict[str, EngineResult], reference: str = REFERENCE) -> list[Difference]:
    """The rows on which the engines disagree, in the order the rows happened.

    An engine whose process did not end normally differs in ``outcome``; the rows it never got to
    are not differences of their own."""
    diffs: list[Difference] = []
    outcomes = {e: r.outcome for e, r in results.items()}
    if len(set(outcomes.values())) > 1:
        bad = tuple(e for e, o in outcomes.items() if o != "ok")
        kinds = sorted({o.split(" ", 1)[0] for e, o in outcomes.items() if o != "ok"})
        diffs.append(Difference("outcome", dict(outcomes), "/".join(kinds), bad))
    keys: list[str] = []
    for result in results.values():
        for key in result.rows:
            if key not in keys:
                keys.append(key)
    for key in keys:
        values = {e: r.rows.get(key) for e, r in results.items()}
        considered = {e: v for e, v in values.items() if v is not None or results[e].ok}
        if len(set(considered.values())) > 1:
            diffs.append(Difference(key, values, _aspect(key), _deviants(considered, reference)))
    return diffs


def signature(diffs: Sequence[Difference]) -> str:
    """The kind of the first difference, e.g. ``crash:jit`` or ``call:jit,tiered``: what a shrunk
    module must still show to count as the same finding."""
    if not diffs:
        return ""
    first = diffs[0]
    return f"{first.aspect}:{','.join(first.deviants)}"


def _clip(text: str | None, width: int) -> str:
    text = "—" if text is None else text
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(results: dict[str, EngineResult], rows: Sequence[str] | None = None, width: int = 48) -> str:
    """A side-by-side table: one line per row (default: the differing ones), one column per engine;
    the notes of the differing cells (trap messages, errors) and failed workers' logs below it."""
    engines = list(results)
    diffs = {d.key: d for d in compare(results)}
    keys = list(diffs) if rows is None else list(rows)
    cells = []
    for key in keys:
        if key == "outcome":
            cells.append([key, *(results[e].outcome for e in engines)])
        else:
            cells.append([key, *(results[e].rows.get(key) for e in engines)])
    header = ["", *engines]
    widths = [min(width, max(len(_clip(row[i], width)) for row in [header, *cells]))
              for i in range(len(header))]
    lines = []
    for n, row in enumerate([header, *cells]):
        mark = "  "
        if n and row[0] in diffs:
            mark = "≠ " if rows is not None else "  "
        lines.append(mark + "  ".join(_clip(c, width).ljust(widths[i]) for i, c in enumerate(row)).rstrip())
        if n == 0:
            lines.append("  " + "  ".join("-" * w for w in widths))
    notes = []
    for key in keys:
        if key in diffs:
            for e in engines:
                note = results[e].notes.get(key)
                if note:
                    notes.append(f"  {key} [{e}]: {_one_line(note)}")
    for e in engines:
        if not results[e].ok and results[e].log.strip():
            tail = [line for line in results[e].log.strip().splitlines() if line.strip()][-3:]
            notes.append(f"  {e} worker log: " + " | ".join(t.strip() for t in tail))
    return "\n".join(lines + notes)


@dataclass
class Comparison:
    results: dict[str, EngineResult]
    differences: list[Difference]

    @property
    def agree(self) -> bool:
        return not self.differences

    @property
    def signature(self) -> str:
        return signature(self.differences)

    def usage_error(self) -> str | None:
        """A request every engine found wrong (no such export, bad argument)."""
        for result in self.results.values():
            for value in result.rows.values():
                if value.startswith(USAGE):
                    return value[len(USAGE):]
        return None


def compare_module(module: str | os.PathLike, tiers: Sequence[str], **kwargs: Any) -> Comparison:
    """Run ``module`` on ``tiers`` and on wasmtime (see :func:`run_engines`) and compare."""
    results = run_engines(module, [*tiers, REFERENCE], **kwargs)
    return Comparison(results, compare(results))


# --- the command ---------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--invoke", metavar="NAME", help="call this exported function with ARGS")
    parser.add_argument("--tiers", metavar="A,B,...",
                        help="wasmjit tiers to compare with wasmtime (default: every available one)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help=f"per engine (default {DEFAULT_TIMEOUT:g})")
    parser.add_argument("--tier-up", metavar="CALLS,LOOPS",
                        help="tier 'tiered': entries / loop back-edges before compiling")
    parser.add_argument("--dir", action="append", default=[], metavar="HOST[::GUEST]",
                        help="preopen a copy of HOST (one per engine) as GUEST (default: HOST)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME[=VAL]",
                        help="set a guest environment variable")
    parser.add_argument("--compile-only", action="store_true",
                        help="only load the module: compare whether each engine accepts it")
    parser.add_argument("--fork", action="store_true",
                        help="run each engine in a fork of this process instead of a fresh Python "
                             "(faster; what the fuzzer does)")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every row, not only differences")
    parser.add_argument("module", metavar="MODULE", help="a .wasm or .wat file")
    parser.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS",
                        help="arguments of the invoked function, or of the WASI command")


_OPTIONS_WITH_VALUE = ("--invoke", "--tiers", "--timeout", "--tier-up", "--dir", "--env")
_FLAGS = ("-v", "--verbose", "--fork", "--compile-only")


def hoist_options(argv: Sequence[str]) -> list[str]:
    """``diff`` arguments with the options written right after MODULE (``diff m.wasm --invoke f 1``)
    moved before it; scanning stops at the first other argument, or at ``--`` (dropped)."""
    argv = list(argv)
    i = 0
    while i < len(argv):  # find MODULE: the first positional argument
        head = argv[i]
        if head == "--" or not head.startswith("-"):
            break
        i += 2 if head in _OPTIONS_WITH_VALUE else 1
    if i >= len(argv) or argv[i] == "--":
        return argv
    before, module, rest = argv[:i], argv[i], argv[i + 1:]
    while rest:
        head = rest[0]
        if head == "--":
            rest.pop(0)
            break
        if head in _OPTIONS_WITH_VALUE and len(rest) > 1:
            before += rest[:2]
            del rest[:2]
        elif head.split("=", 1)[0] in _OPTIONS_WITH_VALUE or head in _FLAGS:
            before.append(rest.pop(0))
        else:
            break
    return [*before, module, *rest]


def parse_tier_up(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        calls, loops = (int(x) for x in text.split(","))
    except ValueError:
        raise UsageError(f"--tier-up {text!r}: expected CALLS,LOOPS (two integers)") from None
    return calls, loops


def binary_module(path: str, work: Path) -> Path:
    """The module as a binary file (text is assembled with wasm-tools) that every engine loads."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise UsageError(f"cannot read {path!r}: {err.strerror}") from None
    from .wat import looks_like_text, wat2wasm

    if not looks_like_text(data):
        return Path(path)
    try:
        binary = wat2wasm(data)
    except WasmjitError as err:
        raise UsageError(f"{path}: {err}") from None
    out = work / (Path(path).stem + ".wasm")
    out.write_bytes(binary)
    return out


def run_diff(args: argparse.Namespace, out: Any = None) -> int:
    """``wasmjit diff``: 0 when every engine agrees, 1 on a difference, 2 on a usage error."""
    out = out or sys.stdout
    try:
        tiers = parse_tiers(args.tiers)
        tier_up = parse_tier_up(args.tier_up)
        if args.timeout <= 0:
            raise UsageError("--timeout must be positive")
        from .cli import environment

        env = environment(args.env)
        dirs = []
        for spec in args.dir:
            host, _, guest = spec.partition("::")
            if not os.path.isdir(host):
                raise UsageError(f"--dir {host!r}: not a directory")
            dirs.append((host, guest or host))
        invoke_args = args.args if args.invoke is not None else []
        wasi_args = [] if args.invoke is not None else args.args
        with tempfile.TemporaryDirectory(prefix="wasmjit-diff-") as tmp:
            module = binary_module(args.module, Path(tmp))
            comparison = compare_module(module, tiers, invoke=args.invoke, args=invoke_args,
                                        wasi_args=wasi_args, env=env, dirs=dirs, timeout=args.timeout,
                                        tier_up=tier_up, argv0=args.module,
                                        launcher="fork" if args.fork else "spawn",
                                        compile_only=args.compile_only)
    except WasmjitError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    problem = comparison.usage_error()
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    return report(comparison, args.module, out, verbose=args.verbose)


def report(comparison: Comparison, name: str, out: Any, verbose: bool = False) -> int:
    results = comparison.results
    engines = ", ".join(results)
    rows = [k for r in results.values() for k in r.rows]
    all_rows = list(dict.fromkeys(["outcome", *rows]))
    if comparison.agree:
        if verbose:
            print(format_table(results, all_rows), file=out)
        print(f"{name}: all {len(results)} engines agree ({engines}) on {len(all_rows)} checks", file=out)
        return 0
    print(format_table(results, all_rows if verbose else None), file=out)
    print(f"{name}: {len(comparison.differences)} difference(s) between {engines} "
          f"(first: {comparison.signature})", file=out)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--worker"]:
        if len(argv) != 4:
            print("usage: python -m wasmjit.difftest --worker ENGINE SPEC.json OUT.jsonl", file=sys.stderr)
            return 2
        code = worker_main(argv[1], argv[2], argv[3])
        # Leave now: the run is recorded, and interpreter teardown (finalizers of an engine's
        # native state) is no part of what is compared; a hang there must not become a timeout.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    from .cli import main as cli_main

    return cli_main(["diff", *argv])


if __name__ == "__main__":
    raise SystemExit(main())
