"""The WebAssembly spec-test (.wast) runner behind ``wasmjit wast`` and the spec_tests suite.

A ``.wast`` script is converted to JSON plus module files by ``wasm-tools json-from-wast``
(cached per script content and wasm-tools version), then every command is run against the
engine through :class:`EngineAdapter`, the only part of this module that touches an engine.
Each command ends as passed, failed (with a one-line reason) or unsupported (the engine raised
:class:`~wasmjit.errors.UnsupportedError`, e.g. for SIMD); nothing an engine does, not even a
Python exception from inside it, stops the run of a file.

Imports: errors (the engine itself is imported lazily, inside :class:`EngineAdapter`).
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import DecodeError, LinkError, Trap, TrapCode, UnsupportedError, ValidationError, WasmjitError
from .wat import wasm_tools

log = logging.getLogger(__name__)

MAX_REASON = 300  # characters of a failure reason
SHOWN_FAILURES = 5  # failures printed per file without --verbose


# --- Results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExternRef:
    """The spec's ``ref.extern N``: a host reference, compared by equality."""

    n: int


@dataclass(frozen=True)
class Failure:
    """One failed command: its line in the .wast file, its type and a one-line reason."""

    line: int
    command: str
    reason: str


@dataclass(frozen=True)
class MessageMismatch:
    """An expected error of the right class whose message lacks the spec's text."""

    line: int
    command: str
    expected: str
    actual: str


@dataclass
class FileResult:
    """The outcome of one .wast file on one tier."""

    path: str
    tier: str | None
    passed: int = 0
    failed: int = 0
    unsupported: int = 0
    message_mismatches: int = 0
    seconds: float = 0.0
    failures: list[Failure] = field(default_factory=list)
    mismatches: list[MessageMismatch] = field(default_factory=list)
    unsupported_reasons: dict[str, int] = field(default_factory=dict)  # reason -> commands

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.unsupported

    @property
    def status(self) -> str:
        """"fail" if any command failed, else "unsupported" if any was, else "pass"."""
        return "fail" if self.failed else "unsupported" if self.unsupported else "pass"

    @property
    def name(self) -> str:
        return Path(self.path).name

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "total": self.total, "status": self.status}


class _Outcome(Exception):  # noqa: N818 - control flow inside the runner, not an error
    """Ends a command early with a verdict other than pass."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Fail(_Outcome):  # noqa: N818
    """The command failed."""


class _Unsupported(_Outcome):  # noqa: N818
    """The engine does not support what the command needs."""


def one_line(text: str, limit: int = MAX_REASON) -> str:
    """``text`` on one line, shortened to ``limit`` characters."""
    flat = " | ".join(part.strip() for part in str(text).strip().splitlines() if part.strip())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


# --- Converting .wast to JSON (cached) -------------------------------------------------------


class ConversionError(Exception):
    """``wasm-tools json-from-wast`` is missing or rejected the script."""


@functools.cache
def wasm_tools_version() -> str:
    proc = subprocess.run([wasm_tools(), "--version"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise ConversionError(f"`wasm-tools --version` failed: {one_line(proc.stderr)}")
    return proc.stdout.strip()


def cache_root() -> Path:
    """$XDG_CACHE_HOME/wasmjit/wast (default ~/.cache/...), or a temp dir if that is not writable."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    root = Path(base) / "wasmjit" / "wast"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:
        root = Path(tempfile.gettempdir()) / f"wasmjit-wast-{os.getuid()}"
        root.mkdir(parents=True, exist_ok=True)
    return root


def convert(path: Path) -> Path:
    """The JSON of ``path`` (its module files beside it), converting on a cache miss.

    The cache key hashes the script and the wasm-tools version. A conversion goes to a private
    temporary directory that is renamed into place, so concurrent processes never see half of
    one; the loser of a race discards its copy.
    """
    data = path.read_bytes()
    digest = hashlib.sha256(data + b"\0" + wasm_tools_version().encode()).hexdigest()[:24]
    root = cache_root()
    final = root / f"{path.stem}-{digest}"
    json_path = final / f"{path.stem}.json"
    if json_path.exists():
        return json_path
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{path.stem}-", dir=root))
    try:
        proc = subprocess.run([wasm_tools(), "json-from-wast", str(path), "-o", str(tmp / json_path.name),
                               "--wasm-dir", f"{tmp}/"], capture_output=True, text=True)
        if proc.returncode != 0:
            raise ConversionError(f"wasm-tools json-from-wast failed: {one_line(proc.stderr, 1000)}")
        tmp.chmod(0o755)  # mkdtemp makes it private
        try:
            tmp.rename(final)
        except OSError:  # another process finished first
            if not json_path.exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return json_path


# --- The engine ------------------------------------------------------------------------------

MALFORMED, INVALID, UNLINKABLE, TRAP = "malformed", "invalid", "unlinkable", "trap"
UNSUPPORTED, OTHER, CRASH = "unsupported", "other error", "crash"


@dataclass(frozen=True)
class EngineError:
    """An exception from the engine, classified: ``kind`` is one of the constants above."""

    kind: str
    message: str  # for a trap, the spec's short reason
    stack_overflow: bool = False

    def describe(self) -> str:
        return f"{self.kind}: {self.message}"


SPECTEST_FUNCS = {"print": (), "print_i32": ("i32",), "print_i64": ("i64",), "print_f32": ("f32",),
                  "print_f64": ("f64",), "print_i32_f32": ("i32", "f32"), "print_f64_f64": ("f64", "f64")}
SPECTEST_GLOBALS = {"global_i32": ("i32", 666), "global_i64": ("i64", 666),
                    "global_f32": ("f32", 666.6), "global_f64": ("f64", 666.6)}


def _spectest_print(name: str) -> Callable[..., None]:
    def host(*args: Any) -> None:
        log.debug("spectest.%s%r", name, args)
    host.__name__ = name
    return host


class EngineAdapter:
    """Everything the runner asks of an engine; this one drives wasmjit.

    Another engine with wasmtime-py's API can subclass it, overriding ``api``,
    ``make_engine``, ``load``, ``classify`` and the float conversions. One adapter object
    serves one .wast file: ``start`` makes its store and linker.
    """

    name = "wasmjit"

    def __init__(self, tier: str | None = "interp") -> None:
        self.tier = tier
        self.engine: Any = None
        self.store: Any = None
        self.linker: Any = None

    @functools.cached_property
    def api(self) -> Any:
        """The module with the wasmtime-py style names (Engine, Store, Module, ...)."""
        import wasmjit
        return wasmjit

    def make_engine(self) -> Any:
        config = self.api.Config()
        if self.tier is not None:
            config.tier = self.tier
        return self.api.Engine(config)

    def start(self) -> None:
        """A fresh engine, store and linker with the ``spectest`` module defined."""
        api = self.api
        self.engine = self.make_engine()
        self.store = api.Store(self.engine)
        self.linker = api.Linker(self.engine)
        self.linker.allow_shadowing = True
        self.define_spectest()

    def define_spectest(self) -> None:
        api, store = self.api, self.store
        for name, params in SPECTEST_FUNCS.items():
            ftype = api.FuncType([self.valtype(p) for p in params], [])
            self.linker.define(store, "spectest", name, api.Func(store, ftype, _spectest_print(name)))
        for name, (valtype, value) in SPECTEST_GLOBALS.items():
            gtype = api.GlobalType(self.valtype(valtype), False)
            self.linker.define(store, "spectest", name, api.Global(store, gtype, value))
        table_type = api.TableType(api.ValType.funcref(), api.Limits(10, 20))
        self.linker.define(store, "spectest", "table", api.Table(store, table_type, None))
        memory = api.Memory(store, api.MemoryType(api.Limits(1, 2)))
        self.linker.define(store, "spectest", "memory", memory)

    def valtype(self, name: str) -> Any:
        return getattr(self.api.ValType, name)()

    def load(self, path: Path, text: bool) -> Any:
        """A module from a .wasm file, or from a .wat file when ``text``."""
        if text:
            data = path.read_bytes()
            try:
                return self.api.Module(self.engine, data.decode("utf-8"))
            except UnicodeDecodeError:
                return self.api.Module(self.engine, data)
        return self.api.Module.from_file(self.engine, path)

    def instantiate(self, module: Any) -> Any:
        return self.linker.instantiate(self.store, module)

    def register(self, name: str, instance: Any) -> None:
        self.linker.define_instance(self.store, name, instance)

    def export(self, instance: Any, name: str) -> Any:
        try:
            return instance.exports(self.store)[name]
        except KeyError:
            raise _Fail(f"no export named {name!r}") from None

    def invoke(self, instance: Any, name: str, args: list[Any]) -> list[Any]:
        """Call an exported function; its results as a list."""
        func = self.export(instance, name)
        if not isinstance(func, self.api.Func):
            raise _Fail(f"export {name!r} is a {type(func).__name__}, not a function")
        count = len(func.type(self.store).results)
        result = func(self.store, *args)
        if count == 0:
            return []
        return list(result) if count > 1 else [result]

    def get(self, instance: Any, name: str) -> Any:
        glob = self.export(instance, name)
        if not isinstance(glob, self.api.Global):
            raise _Fail(f"export {name!r} is a {type(glob).__name__}, not a global")
        return glob.value(self.store)

    def is_func(self, value: Any) -> bool:
        return isinstance(value, self.api.Func)

    def classify(self, exc: Exception) -> EngineError:
        """What kind of error the engine raised."""
        if isinstance(exc, Trap):
            reason = getattr(exc, "reason", None) or str(exc)
            return EngineError(TRAP, reason, exc.trap_code is TrapCode.STACK_OVERFLOW)
        kinds = ((UnsupportedError, UNSUPPORTED), (DecodeError, MALFORMED), (ValidationError, INVALID),
                 (LinkError, UNLINKABLE), (WasmjitError, OTHER))
        for cls, kind in kinds:
            if isinstance(exc, cls):
                return EngineError(kind, one_line(str(exc)))
        return EngineError(CRASH, one_line(f"{type(exc).__name__}: {exc}"))

    # Bit-exact float conversions (f32 signalling NaNs included).
    def f32_from_bits(self, bits: int) -> float:
        from .runtime.numerics import f32_to_float
        return f32_to_float(bits)

    def f32_to_bits(self, value: float) -> int:
        from .runtime.numerics import float_to_f32
        return float_to_f32(value)

    def f64_from_bits(self, bits: int) -> float:
        from .runtime.numerics import bits_to_f64
        return bits_to_f64(bits)

    def f64_to_bits(self, value: float) -> int:
        from .runtime.numerics import f64_to_bits
        return f64_to_bits(value)


# --- Values ----------------------------------------------------------------------------------

INT_BITS = {"i32": 32, "i64": 64}
FLOAT_BITS = {"f32": 32, "f64": 64}
# (quiet-NaN pattern, mask without the sign) per float type
CANONICAL_NAN = {"f32": (0x7FC00000, 0x7FFFFFFF), "f64": (0x7FF8000000000000, 0x7FFFFFFFFFFFFFFF)}


def _unsigned(value: str, bits: int) -> int:
    return int(value) & ((1 << bits) - 1)


def _signed(value: str, bits: int) -> int:
    n = _unsigned(value, bits)
    return n - (1 << bits) if n >> (bits - 1) else n


def _float_bits(adapter: EngineAdapter, valtype: str, actual: Any) -> int:
    if isinstance(actual, bool) or not isinstance(actual, (int, float)):
        raise _Fail(f"expected an {valtype} float, got {actual!r}")
    value = float(actual)
    return adapter.f32_to_bits(value) if valtype == "f32" else adapter.f64_to_bits(value)


def show(valtype: str, value: Any) -> str:
    """A value for a failure message: ints and floats with their bit patterns."""
    if valtype in INT_BITS and isinstance(value, int):
        return f"{value} (0x{value & ((1 << INT_BITS[valtype]) - 1):x})"
    return repr(value)


class Values:
    """Turns the JSON's values into engine arguments and checks results against expectations."""

    def __init__(self, adapter: EngineAdapter) -> None:
        self.adapter = adapter
        self._externs: dict[int, ExternRef] = {}  # one object per N, so identity is stable too

    def extern(self, n: int) -> ExternRef:
        return self._externs.setdefault(n, ExternRef(n))

    def arg(self, spec: dict[str, Any]) -> Any:
        valtype, value = spec["type"], spec.get("value")
        if valtype == "v128":
            raise _Unsupported("v128 values are not supported")
        if valtype in INT_BITS:
            return _signed(value, INT_BITS[valtype])
        if valtype == "f32":
            return self.adapter.f32_from_bits(int(value))
        if valtype == "f64":
            return self.adapter.f64_from_bits(int(value))
        if value == "null" and valtype in ("externref", "funcref"):
            return None
        if valtype == "externref" and value is not None:
            return self.extern(int(value))
        raise _Fail(f"cannot pass an argument {spec!r}")

    def check(self, expected: list[dict[str, Any]], actual: list[Any]) -> None:
        """Raise _Fail unless ``actual`` matches ``expected`` (bit-exact, NaN patterns aside)."""
        if len(actual) != len(expected):
            raise _Fail(f"expected {len(expected)} results, got {len(actual)}: {actual!r}")
        for i, (spec, value) in enumerate(zip(expected, actual, strict=True)):
            problem = self.mismatch(spec, value)
            if problem:
                raise _Fail(f"result {i}: {problem}")

    def mismatch(self, spec: dict[str, Any], actual: Any) -> str | None:
        """Why ``actual`` does not match ``spec``, or None if it does."""
        valtype, value = spec["type"], spec.get("value")
        if valtype == "v128":
            raise _Unsupported("v128 values are not supported")
        if valtype in INT_BITS:
            return self._int_mismatch(valtype, value, actual)
        if valtype in FLOAT_BITS:
            return self._float_mismatch(valtype, value, actual)
        if valtype in ("externref", "funcref"):
            return self._ref_mismatch(valtype, value, actual)
        raise _Fail(f"unknown expected value {spec!r}")

    @staticmethod
    def _int_mismatch(valtype: str, value: str, actual: Any) -> str | None:
        bits = INT_BITS[valtype]
        if isinstance(actual, bool) or not isinstance(actual, int):
            return f"expected {valtype} {_signed(value, bits)}, got {actual!r}"
        if actual & ((1 << bits) - 1) == _unsigned(value, bits):
            return None
        return f"expected {valtype} {show(valtype, _signed(value, bits))}, got {show(valtype, actual)}"

    def _float_mismatch(self, valtype: str, value: str, actual: Any) -> str | None:
        bits = _float_bits(self.adapter, valtype, actual)
        quiet, mask = CANONICAL_NAN[valtype]
        if value == "nan:canonical":
            ok, want = bits & mask == quiet, value
        elif value == "nan:arithmetic":
            ok, want = bits & quiet == quiet, value
        else:
            expected = int(value)
            ok, want = bits == expected, f"{self._float(valtype, expected)!r} ({expected:#x})"
        return None if ok else f"expected {valtype} {want}, got {actual!r} ({bits:#x})"

    def _float(self, valtype: str, bits: int) -> float:
        return self.adapter.f32_from_bits(bits) if valtype == "f32" else self.adapter.f64_from_bits(bits)

    def _ref_mismatch(self, valtype: str, value: str | None, actual: Any) -> str | None:
        if value == "null":
            ok = actual is None
        elif value is None:  # (ref.extern) / (ref.func): any non-null reference
            ok = actual is not None and (valtype == "externref" or self.adapter.is_func(actual))
        elif valtype == "externref":
            ok = actual == ExternRef(int(value))
        else:
            raise _Fail(f"unknown expected funcref value {value!r}")
        if ok:
            return None
        want = {"null": "null", None: "non-null"}.get(value, f"ref.extern {value}")
        return f"expected {valtype} {want}, got {actual!r}"


# --- The runner ------------------------------------------------------------------------------


@dataclass
class _Slot:
    """A module command's result: its instance, or why there is none."""

    line: int
    instance: Any = None
    error: str | None = None
    unsupported: bool = False

    def get(self) -> Any:
        if self.unsupported:
            raise _Unsupported(self.error or "unsupported module")
        if self.error is not None:
            raise _Fail(f"the module at line {self.line} failed: {self.error}")
        return self.instance


def _trap_text_matches(expected: str, reason: str) -> bool:
    """The spec's text and the engine's reason agree if one starts with the other."""
    return bool(reason) and (expected.startswith(reason) or reason.startswith(expected))


class Runner:
    """Runs the commands of one converted .wast file; results accumulate in ``result``."""

    def __init__(self, wasm_dir: Path, commands: list[dict[str, Any]], adapter: EngineAdapter,
                 result: FileResult) -> None:
        self.dir = wasm_dir  # where the command's module files are
        self.commands = commands
        self.adapter = adapter
        self.values = Values(adapter)
        self.result = result
        self.current: _Slot | None = None
        self.named: dict[str, _Slot] = {}
        self.handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            "module": self.cmd_module, "register": self.cmd_register, "action": self.cmd_action,
            "assert_return": self.cmd_assert_return, "assert_trap": self.cmd_assert_trap,
            "assert_exhaustion": self.cmd_assert_exhaustion, "assert_invalid": self.cmd_assert_invalid,
            "assert_malformed": self.cmd_assert_malformed, "assert_unlinkable": self.cmd_assert_unlinkable,
            "assert_uninstantiable": self.cmd_assert_uninstantiable,
        }

    # Running

    def run(self, commands: Sequence[dict[str, Any]] | None = None) -> None:
        for command in self.commands if commands is None else commands:
            self.run_command(command)

    def run_command(self, command: dict[str, Any]) -> None:
        kind, line = command.get("type", "?"), command.get("line", 0)
        try:
            handler = self.handlers.get(kind)
            if handler is None:
                raise _Fail(f"unknown command type {kind!r}")
            handler(command)
        except _Unsupported as unsupported:
            self.result.unsupported += 1
            reasons = self.result.unsupported_reasons
            reasons[unsupported.reason] = reasons.get(unsupported.reason, 0) + 1
        except _Fail as fail:
            self._fail(line, kind, fail.reason)
        except Exception as exc:  # noqa: BLE001 - a runner bug must not stop the file either
            self._fail(line, kind, f"runner error: {type(exc).__name__}: {exc}")
        else:
            self.result.passed += 1

    def _fail(self, line: int, kind: str, reason: str) -> None:
        self.result.failed += 1
        self.result.failures.append(Failure(line, kind, one_line(reason)))

    def _attempt(self, action: Callable[[], Any]) -> tuple[Any, EngineError | None]:
        """Run an engine call: (its value, None), or (None, its classified error)."""
        try:
            return action(), None
        except _Outcome:
            raise
        except Exception as exc:  # noqa: BLE001 - every engine exception is a verdict
            err = self.adapter.classify(exc)
            if err.kind == UNSUPPORTED:
                raise _Unsupported(err.message) from None
            return None, err

    def _engine(self, action: Callable[[], Any]) -> Any:
        """Run an engine call that should succeed; an error ends the command."""
        value, err = self._attempt(action)
        if err is not None:
            raise _Fail(f"unexpected {err.describe()}")
        return value

    def _engine_error(self, action: Callable[[], Any], wanted: str) -> EngineError:
        """Run an engine call that should fail; its classified error (_Fail if it succeeds)."""
        value, err = self._attempt(action)
        if err is not None:
            return err
        returned = f" with {value!r}" if isinstance(value, list) else ""
        raise _Fail(f"expected {wanted}, but it succeeded{returned}")

    # Modules

    def _file(self, command: dict[str, Any]) -> Path:
        return self.dir / command["filename"]

    def _is_text(self, command: dict[str, Any]) -> bool:
        return command.get("module_type", "binary") == "text"

    def _load(self, command: dict[str, Any]) -> Any:
        return self.adapter.load(self._file(command), self._is_text(command))

    def cmd_module(self, command: dict[str, Any]) -> None:
        slot = self.current = _Slot(command["line"])
        if command.get("name"):
            self.named[command["name"]] = slot
        try:
            module = self._engine(lambda: self._load(command))
            slot.instance = self._engine(lambda: self.adapter.instantiate(module))
        except _Outcome as outcome:
            slot.error, slot.unsupported = outcome.reason, isinstance(outcome, _Unsupported)
            raise

    def _slot(self, name: str | None) -> _Slot:
        if name is None:
            if self.current is None:
                raise _Fail("no module has been defined yet")
            return self.current
        if name not in self.named:
            raise _Fail(f"unknown module {name!r}")
        return self.named[name]

    def cmd_register(self, command: dict[str, Any]) -> None:
        instance = self._slot(command.get("name")).get()
        self._engine(lambda: self.adapter.register(command["as"], instance))

    # Actions

    def _action(self, action: dict[str, Any]) -> list[Any]:
        """Perform an invoke or get; the results as a list (engine errors propagate)."""
        instance = self._slot(action.get("module")).get()
        kind, field_name = action["type"], action["field"]
        if kind == "invoke":
            args = [self.values.arg(arg) for arg in action.get("args", [])]
            return self.adapter.invoke(instance, field_name, args)
        if kind == "get":
            return [self.adapter.get(instance, field_name)]
        raise _Fail(f"unknown action type {kind!r}")

    def cmd_action(self, command: dict[str, Any]) -> None:
        self._engine(lambda: self._action(command["action"]))

    def cmd_assert_return(self, command: dict[str, Any]) -> None:
        results = self._engine(lambda: self._action(command["action"]))
        self.values.check(command["expected"], results)

    def _assert_trapping(self, command: dict[str, Any], exhaustion: bool) -> None:
        wanted = "stack exhaustion" if exhaustion else "a trap"
        err = self._engine_error(lambda: self._action(command["action"]), wanted)
        expected = command["text"]
        if err.kind != TRAP:
            raise _Fail(f"expected {wanted} ({expected!r}), got {err.describe()}")
        if exhaustion and not err.stack_overflow:
            raise _Fail(f"expected a stack overflow trap, got trap {err.message!r}")
        if not _trap_text_matches(expected, err.message):
            raise _Fail(f"expected trap {expected!r}, got trap {err.message!r}")

    def cmd_assert_trap(self, command: dict[str, Any]) -> None:
        self._assert_trapping(command, exhaustion=False)

    def cmd_assert_exhaustion(self, command: dict[str, Any]) -> None:
        self._assert_trapping(command, exhaustion=True)

    # Assertions on modules

    def _expect_kind(self, command: dict[str, Any], err: EngineError, kind: str) -> None:
        """Pass iff ``err`` is of ``kind``; a message without the spec's text is only counted."""
        expected = command.get("text", "")
        if err.kind != kind:
            raise _Fail(f"expected {kind} ({expected!r}), got {err.describe()}")
        if expected not in err.message:
            self.result.message_mismatches += 1
            self.result.mismatches.append(MessageMismatch(command["line"], command["type"], expected,
                                                          err.message))

    def cmd_assert_invalid(self, command: dict[str, Any]) -> None:
        self._expect_kind(command, self._engine_error(lambda: self._load(command), INVALID), INVALID)

    def cmd_assert_malformed(self, command: dict[str, Any]) -> None:
        self._expect_kind(command, self._engine_error(lambda: self._load(command), MALFORMED), MALFORMED)

    def cmd_assert_unlinkable(self, command: dict[str, Any]) -> None:
        module = self._engine(lambda: self._load(command))
        err = self._engine_error(lambda: self.adapter.instantiate(module), "a link error")
        self._expect_kind(command, err, UNLINKABLE)

    def cmd_assert_uninstantiable(self, command: dict[str, Any]) -> None:
        module = self._engine(lambda: self._load(command))
        err = self._engine_error(lambda: self.adapter.instantiate(module), "a trap")
        self._expect_kind(command, err, TRAP)


# --- Entry points ----------------------------------------------------------------------------

# Commands that set up state for later ones: re-run before the command run_line selects.
SETUP_COMMANDS = ("module", "register", "action")


def _prepare(path: Path, tier: str | None, adapter: EngineAdapter | None,
             result: FileResult) -> Runner | None:
    """Convert the script and start the engine; None (with a failure recorded) if that fails."""
    adapter = adapter or EngineAdapter(tier)
    try:
        json_path = convert(path)
        commands = json.loads(json_path.read_text())["commands"]
    except (ConversionError, OSError, ValueError, KeyError) as err:
        result.failed += 1
        result.failures.append(Failure(0, "convert", one_line(f"{type(err).__name__}: {err}")))
        return None
    try:
        adapter.start()
    except Exception as exc:  # noqa: BLE001 - an engine that cannot start (e.g. no such tier) fails
        result.failed += 1
        result.failures.append(Failure(0, "setup", f"engine setup: {adapter.classify(exc).describe()}"))
        return None
    return Runner(json_path.parent, commands, adapter, result)


def run_wast(path: str | os.PathLike, tier: str | None = "interp",
             adapter: EngineAdapter | None = None) -> FileResult:
    """Run every command of a .wast file on ``tier`` (or through ``adapter``)."""
    path = Path(path)
    result = FileResult(str(path), tier)
    start = time.perf_counter()
    runner = _prepare(path, tier, adapter, result)
    if runner is not None:
        runner.run()
    result.seconds = time.perf_counter() - start
    return result


def run_line(path: str | os.PathLike, line: int, tier: str | None = "interp",
             adapter: EngineAdapter | None = None) -> FileResult:
    """Re-run the command at ``line`` (the last one starting at or before it) for debugging.

    The module, register and action commands before it run first, since it may depend on
    them; the other assertions before it are skipped. Raises ValueError if no command starts
    at or before ``line``.
    """
    path = Path(path)
    result = FileResult(str(path), tier)
    start = time.perf_counter()
    runner = _prepare(path, tier, adapter, result)
    if runner is not None:
        before = [c for c in runner.commands if c["line"] <= line]
        if not before:
            raise ValueError(f"{path}: no command starts at or before line {line}")
        target = before[-1]
        runner.run([c for c in before[:-1] if c["type"] in SETUP_COMMANDS] + [target])
    result.seconds = time.perf_counter() - start
    return result


# --- Command line ----------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wasmjit wast", description="Run WebAssembly spec test scripts.")
    parser.add_argument("files", nargs="+", metavar="FILE.wast")
    parser.add_argument("--tier", default=os.environ.get("WASMJIT_TIER", "tiered"),
                        help="execution tier (default: $WASMJIT_TIER or tiered)")
    parser.add_argument("--json", metavar="OUT", help="write a JSON report to OUT")
    parser.add_argument("--line", type=int, metavar="N",
                        help="run only the command at line N (and the modules it needs); one FILE")
    parser.add_argument("--verbose", "-v", action="store_true",
                        help="print every failure and message mismatch")
    return parser


def format_table(results: Sequence[FileResult]) -> list[str]:
    """The per-file table and the total line."""
    width = max([len("file"), len("total"), *(len(r.name) for r in results)])

    def row(name: object, passed: object, failed: object, unsupported: object, total: object,
            rest: str) -> str:
        return f"{name:<{width}}  {passed:>7}  {failed:>7}  {unsupported:>7}  {total:>7}  {rest}"

    header = row("file", "passed", "failed", "unsupp", "total", f"{'status':<11}  time")
    rule = "-" * len(header)
    lines = [header, rule]
    for r in results:
        status = f"{r.status:<11}  {r.seconds:.1f}s"
        lines.append(row(r.name, r.passed, r.failed, r.unsupported, r.total, status))
    tot = {k: sum(getattr(r, k) for r in results) for k in ("passed", "failed", "unsupported", "total",
                                                              "message_mismatches", "seconds")}
    lines += [rule, row("total", tot["passed"], tot["failed"], tot["unsupported"], tot["total"],
                        f"{len(results)} files, {tot['seconds']:.1f}s"),
              f"error messages without the spec's text (not failures): {tot['message_mismatches']}"]
    return lines


def format_details(result: FileResult, verbose: bool) -> list[str]:
    """The failures of one file (the first few unless ``verbose``), and mismatches if verbose."""
    lines = []
    shown = result.failures if verbose else result.failures[:SHOWN_FAILURES]
    for f in shown:
        lines.append(f"  {result.name}:{f.line}: {f.command}: {f.reason}")
    if len(shown) < len(result.failures):
        lines.append(f"  ... {len(result.failures) - len(shown)} more failures in {result.name} (--verbose)")
    if verbose:
        for reason, count in result.unsupported_reasons.items():
            lines.append(f"  {result.name}: {count} unsupported: {reason}")
        for m in result.mismatches:
            lines.append(f"  {result.name}:{m.line}: {m.command}: message {m.actual!r} "
                         f"lacks {m.expected!r}")
    return lines


def write_report(path: str, tier: str | None, results: Sequence[FileResult]) -> None:
    report = {"tier": tier, "files": [r.to_json() for r in results],
              "totals": {k: sum(getattr(r, k) for r in results)
                         for k in ("passed", "failed", "unsupported", "total", "message_mismatches")}}
    Path(path).write_text(json.dumps(report, indent=2) + "\n")


def main(argv: Sequence[str] | None = None,
         adapter_factory: Callable[[str], EngineAdapter] | None = None) -> int:
    """``wasmjit wast``: 0 iff no command failed (unsupported ones do not fail)."""
    parser = build_parser()
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    if args.line is not None and len(args.files) != 1:
        parser.error("--line takes exactly one FILE")
    return run_cli(args, adapter_factory)


def run_cli(args: argparse.Namespace, adapter_factory: Callable[[str], EngineAdapter] | None = None) -> int:
    """Run the files of parsed ``build_parser()`` arguments; print the table and details."""
    results = []
    for name in args.files:
        adapter = adapter_factory(args.tier) if adapter_factory else None
        try:
            if args.line is not None:
                result = run_line(name, args.line, args.tier, adapter)
            else:
                result = run_wast(name, args.tier, adapter)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        results.append(result)
    print("\n".join(format_table(results)))
    details = [line for r in results for line in format_details(r, args.verbose or args.line is not None)]
    if details:
        print("\n".join(["", "details:", *details]))
    if args.json:
        write_report(args.json, args.tier, results)
    return 0 if not any(r.failed for r in results) else 1
