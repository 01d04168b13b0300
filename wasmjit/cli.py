"""The ``wasmjit`` command line: run, validate, compile, wast, diff, fuzz.

Every error is one line on stderr (``error: ...``) and a non-zero exit code; a trap also
prints its wasm backtrace. No Python traceback reaches the user for bad input.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from . import api
from .errors import Trap, WasmjitError, WatError
from .wasi import ExitTrap

EXIT_TRAP = 134  # as wasmtime: 128 + SIGABRT


def _tier_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tier", choices=api.TIERS, default=None,
                        help="execution tier (default: $WASMJIT_TIER or the engine default)")


class _Parser(argparse.ArgumentParser):
    """argparse with this CLI's error style: one ``error: ...`` line, no usage (exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message}\n")


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, found {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, found {text!r}")
    return value


def _duration(text: str) -> float:
    """Seconds from ``2``, ``1.5``, ``1.5s`` or ``500ms``."""
    scale, number = 1.0, text
    if text.endswith("ms"):
        scale, number = 0.001, text[:-2]
    elif text.endswith("s"):
        number = text[:-1]
    try:
        seconds = float(number) * scale
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a duration such as 2, 1.5s or 500ms, "
                                         f"found {text!r}") from None
    if not seconds > 0 or seconds == float("inf"):
        raise argparse.ArgumentTypeError(f"a timeout must be a positive duration, found {text!r}")
    return seconds


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="wasmjit", description="A WebAssembly engine in Python.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run a WebAssembly module (a WASI command: its _start)")
    run.add_argument("--invoke", metavar="NAME", help="call this exported function with ARGS")
    run.add_argument("--dir", action="append", default=[], metavar="HOST[::GUEST]",
                     help="preopen the host directory HOST for the guest, as GUEST (default: HOST)")
    run.add_argument("--env", action="append", default=[], metavar="NAME[=VAL]",
                     help="set a guest environment variable (without =VAL: the host's value)")
    run.add_argument("--unknown-imports-trap", action="store_true",
                     help="link unknown function imports as functions that trap when called")
    _tier_arg(run)
    run.add_argument("--tier-stats", action="store_true",
                     help="print per-function entry and loop back-edge counts afterwards")
    run.add_argument("--verify", action="store_true",
                     help="tiered: check each function's native code against the interpreter "
                          "(under Unicorn) before installing it; a mismatch keeps it interpreted")
    run.add_argument("--fuel", type=_non_negative_int, metavar="N",
                     help="give the module N units of fuel (one per instruction, as wasmtime's "
                          "-W fuel=N); running out traps")
    run.add_argument("--timeout", type=_duration, metavar="SECONDS",
                     help="interrupt the module after this long (epoch interruption, like "
                          "wasmtime's -W timeout=...): 2, 1.5, 1.5s or 500ms")
    run.add_argument("--max-memory-size", type=_non_negative_int, metavar="BYTES",
                     help="limit each linear memory to this many bytes (memory.grow past it "
                          "returns -1; like wasmtime's -W max-memory-size=...)")
    run.add_argument("--allow-precompiled", action="store_true",
                     help="MODULE may be a precompiled module (`wasmjit compile -o`): its stored "
                          "machine code runs without being compiled again (it is trusted)")
    run.add_argument("module", metavar="MODULE", help="a .wasm or .wat file")
    run.add_argument("args", nargs=argparse.REMAINDER, metavar="ARGS",
                     help="arguments of the invoked function")

    compile_ = sub.add_parser("compile", help="compile every function to x86-64 and report (or show) it")
    compile_.add_argument("--disasm", action="store_true",
                          help="print the native code (Capstone) under the wasm instructions it came from")
    compile_.add_argument("--func", metavar="NAME", help="only this function (name, export or index)")
    compile_.add_argument("-o", "--output", metavar="FILE",
                          help="write the module with its native code (Module.serialize) to FILE, "
                               "for `wasmjit run --allow-precompiled FILE`")
    compile_.add_argument("--consume-fuel", action="store_true",
                          help="with -o: code that counts fuel (for `run --fuel`)")
    compile_.add_argument("--epoch-interruption", action="store_true",
                          help="with -o: code that checks epochs (for `run --timeout`)")
    compile_.add_argument("module", metavar="MODULE", help="a .wasm or .wat file")

    validate = sub.add_parser("validate", help="decode and validate a module")
    validate.add_argument("module", metavar="FILE")

    wast = sub.add_parser("wast", help="run WebAssembly spec test scripts (.wast)", add_help=False)
    wast.add_argument("rest", nargs=argparse.REMAINDER)

    from . import difftest, fuzz

    diff = sub.add_parser("diff", help="run a module on every tier and on wasmtime, compare the outcomes")
    difftest.add_arguments(diff)
    fuzz_ = sub.add_parser("fuzz", help="differential fuzzing against wasmtime (wasm-tools smith)")
    fuzz.add_arguments(fuzz_)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["wast"]:  # the spec runner parses its own options
        from .wast import main as wast_main
        return _guard(lambda: wast_main(argv[1:]))
    if argv[:1] == ["diff"]:  # options may follow MODULE: `diff m.wasm --invoke f 1`
        from .difftest import hoist_options
        argv = ["diff", *hoist_options(argv[1:])]
    args = build_parser().parse_args(argv)
    if args.command == "diff":
        from .difftest import run_diff
        return run_diff(args)
    if args.command == "fuzz":
        from .fuzz import main as fuzz_main
        return fuzz_main(args)
    if args.command == "compile":
        return _guard(lambda: compile_module(args))
    if args.command == "run":
        return _guard(lambda: run(args))
    return _guard(lambda: validate(args.module))


def _guard(action: Any) -> int:
    """Run a command; turn wasmjit errors into one line and an exit code."""
    try:
        return int(action())
    except ExitTrap as exit_:
        return exit_.code
    except Trap as trap:
        print(f"error: {str(trap).rstrip()}", file=sys.stderr)
        return EXIT_TRAP
    except WasmjitError as err:
        # WebAssembly text errors: the parser's message; wasmtime's location lines stay in str(err)
        print(f"error: {err.reason if isinstance(err, WatError) else err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1


def compile_module(args: argparse.Namespace) -> int:
    """``wasmjit compile``: instantiate on the jit tier (imports become trapping stubs, WASI is
    defined) and list each function's native code size, or its disassembly with ``--disasm``."""
    from .jit.native import native_store

    config = api.Config()
    config.tier = "jit"
    config.consume_fuel, config.epoch_interruption = args.consume_fuel, args.epoch_interruption
    engine = api.Engine(config)
    store = api.Store(engine)
    module = api.Module.from_file(engine, args.module)
    if args.output is not None:
        try:
            Path(args.output).write_bytes(module.serialize())
        except OSError as err:
            raise WasmjitError(f"cannot write {args.output}: {err.strerror}") from None
        return 0
    store.set_wasi(api.WasiConfig())
    linker = api.Linker(engine)
    linker.define_wasi()
    linker.allow_shadowing = True
    linker.define_unknown_imports_as_traps(module)
    instance = linker.instantiate(store, module)
    funcs = [f for f in instance._inst.funcs if getattr(f, "instance", None) is instance._inst]
    if args.func is not None:
        exported = {name for name, item in instance._inst.exports.items() if item is not None}
        wanted = [f for f in funcs if args.func in (f.name, str(f.index)) or
                  (args.func in exported and instance._inst.exports[args.func] is f)]
        if not wanted:
            raise WasmjitError(f"no function named `{args.func}` in {args.module}")
        funcs = wanted
    state = native_store(store._store)
    ranges = {id(r.func): r for r in state.ranges}
    for func in funcs:
        where = ranges[id(func)]
        name = f"{func.instance.name or '<module>'}!{func.name or f'func[{func.index}]'}"
        print(f"{name}: {where.end - where.start} bytes at {where.start:#x}, "
              f"compiled in {func.compile_seconds * 1000:.2f} ms")
        if args.disasm:
            print_disassembly(func, where)
    return 0


def print_disassembly(func: Any, where: Any) -> None:
    """Capstone's listing of ``func``'s native code, each run under the wasm instruction it
    implements (``;; 0xOFFSET: instruction``)."""
    import ctypes

    import capstone

    text = {offset: f"{op.name} {_imm_text(imm)}".rstrip() for op, imm, offset in func.info.body}
    marks = dict(where.wasm_marks)
    cs = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    code = ctypes.string_at(where.start, where.end - where.start)
    for address, _size, mnemonic, operands in cs.disasm_lite(code, where.start):
        if address in marks:
            print(f"  ;; {marks[address]:#x}: {text.get(marks[address], '?')}")
        print(f"    {address:#x}: {mnemonic} {operands}".rstrip())
        if mnemonic == "int3":  # the padding after the code
            break


def _imm_text(imm: Any) -> str:
    if imm is None:
        return ""
    if isinstance(imm, tuple):
        return " ".join(_imm_text(x) for x in imm)
    return str(imm)


def validate(path: str) -> int:
    engine = api.Engine()
    api.Module.from_file(engine, path)
    return 0


def run(args: argparse.Namespace) -> int:
    config = api.Config()
    if args.tier:
        config.tier = args.tier
    config.verify = args.verify
    config.consume_fuel = args.fuel is not None
    config.epoch_interruption = args.timeout is not None
    if args.verify:
        warnings.showwarning = _show_warning
    engine = api.Engine(config)
    store = api.Store(engine)
    if args.fuel is not None:
        store.set_fuel(args.fuel)
    if args.max_memory_size is not None:
        store.set_limits(memory_size=args.max_memory_size)
    timer = None
    if args.timeout is not None:
        store.set_epoch_deadline(1)
        timer = threading.Timer(args.timeout, engine.increment_epoch)
        timer.daemon = True
        timer.start()
    module = _load(engine, args.module, args.allow_precompiled)
    wasi = api.WasiConfig()
    wasi.argv = [args.module, *args.args] if args.invoke is None else [args.module]
    wasi.env = environment(args.env)
    for spec in args.dir:
        host, _, guest = spec.partition("::")
        wasi.preopen_dir(host, guest or host)
    wasi.inherit_stdin()
    wasi.inherit_stdout()
    wasi.inherit_stderr()
    store.set_wasi(wasi)
    linker = api.Linker(engine)
    linker.define_wasi()
    if args.unknown_imports_trap:
        linker.define_unknown_imports_as_traps(module)
    instance = linker.instantiate(store, module)
    try:
        if args.invoke is not None:
            _invoke(store, instance, args.invoke, args.args)
        else:
            exports = instance.exports(store)
            entry = exports.get("_start") or exports.get("")
            if isinstance(entry, api.Func):
                entry(store)
    finally:
        if timer is not None:
            timer.cancel()
        if args.tier_stats:
            print_tier_stats(store)
    return 0


def _load(engine: api.Engine, path: str, allow_precompiled: bool) -> api.Module:
    """A .wasm/.wat module, or with ``allow_precompiled`` a serialized one (`compile -o`)."""
    from .jit.serialize import MAGIC

    data = api._read_file(path, "cannot read")
    if not data.startswith(MAGIC):
        return api.Module(engine, data)
    if not allow_precompiled:
        raise WasmjitError(f"{path} is a precompiled module: run it with --allow-precompiled")
    return api.Module.deserialize(engine, data)


def environment(specs: list[str]) -> list[tuple[str, str]]:
    """--env NAME=VAL pairs in order; a bare NAME takes the host's value (skipped if unset)."""
    env: dict[str, str] = {}
    for spec in specs:
        name, has_value, value = spec.partition("=")
        if not name:
            raise WasmjitError(f"invalid --env value {spec!r}: expected NAME[=VAL]")
        if has_value:
            env[name] = value
        elif name in os.environ:
            env[name] = os.environ[name]
    return list(env.items())


def _invoke(store: api.Store, instance: api.Instance, name: str, raw_args: list[str]) -> None:
    func = instance.exports(store).get(name)
    if not isinstance(func, api.Func):
        raise WasmjitError(f"no exported function named `{name}`")
    params = func.type(store).params
    if len(raw_args) != len(params):
        raise WasmjitError(f"`{name}` takes {len(params)} argument(s), {len(raw_args)} given")
    values = [parse_value(text, t.name) for text, t in zip(raw_args, params, strict=True)]
    result = func(store, *values)
    results = [] if result is None else result if isinstance(result, list) else [result]
    for value in results:
        print(value)


def parse_value(text: str, valtype: str) -> Any:
    """Parse a command-line argument as a value of ``valtype``."""
    try:
        if valtype in ("i32", "i64"):
            return int(text, 0)
        if valtype in ("f32", "f64"):
            return float(text)
    except ValueError:
        raise WasmjitError(f"invalid {valtype} argument: {text!r}") from None
    raise WasmjitError(f"cannot pass a {valtype} argument on the command line")


def _show_warning(message: Warning | str, category: type[Warning], *rest: Any, **kw: Any) -> None:
    print(f"warning: {message}", file=sys.stderr)


def print_tier_stats(store: api.Store) -> None:
    """Per-function counters, tier and native code, as a table on stderr (functions that ran or
    were compiled)."""
    stats = [s for s in store.func_stats() if s.entries or s.back_edges or s.code_bytes]
    rows = [(f"{s.module or '<module>'}!{s.name or f'func[{s.index}]'}", s.entries, s.back_edges, s.tier,
             f"{s.compile_ms:.2f}" if s.code_bytes else "-", s.code_bytes or "-", s.verified or "-")
            for s in stats]
    width = max([len("function"), *(len(r[0]) for r in rows)])
    print(f"{'function':<{width}}  {'entries':>10}  {'back-edges':>12}  {'tier':<7}  {'compile-ms':>10}  "
          f"{'code-bytes':>10}  verified", file=sys.stderr)
    for name, entries, back_edges, tier, ms, size, verified in rows:
        print(f"{name:<{width}}  {entries:>10}  {back_edges:>12}  {tier:<7}  {ms:>10}  {size:>10}  "
              f"{verified}", file=sys.stderr)

if __name__ == "__main__":
    raise SystemExit(main())
