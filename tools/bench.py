#!/usr/bin/env python3
"""Benchmark wasmjit side by side with reference engines, in one run, and print a Markdown table.

Suites (--suite):
  pywasm      (default) wasmjit (--tier) vs pywasm 2.2.3 on micro-programs (fib, loop, bytesieve)
              and the Sightglass programs xblabla20, gimli, xchacha20. Requirement: wasmjit's
              interpreter is at least 5x faster than pywasm on each program.
  sightglass  the 19 Sightglass shootout programs on wasmjit (--tier) vs wasmtime-py: the ratio
              wasmjit/wasmtime per program and its geomean over the programs both completed.

Every run of one program on one engine is a fresh subprocess (this script with --worker), killed
after --cap seconds ("over cap" in the table). Times are best of --repeat runs, in seconds:
"bench" is the time between the program's bench.start and bench.end calls (the micro-programs
call them too), "total" is load + compile + instantiate + run, measured inside the worker.
Output is checked: a micro-program's result against its known value, a Sightglass program's
stdout/stderr against NAME.stdout.expected/NAME.stderr.expected (and exit status 0). A mismatch
shows as FAILED, a crash as ERROR (details under the table); either makes the exit status 1.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SIGHTGLASS = ROOT.parent / "shared" / "bench" / "sightglass"
PYWASM_SIGHTGLASS = ("shootout-xblabla20", "shootout-gimli", "shootout-xchacha20")
SPEEDUP_REQUIRED = 5.0
DEFAULT_CAP = {"pywasm": 300.0, "sightglass": 60.0}  # seconds per run

# Micro-programs: each imports bench.start/bench.end and exports `run`, which calls them around the
# measured work and returns a result the harness knows.
_HOOKS = '(import "bench" "start" (func $start)) (import "bench" "end" (func $end))'

FIB_WAT = f"""(module {_HOOKS}
  (func $fib (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                     (call $fib (i32.sub (local.get $n) (i32.const 2)))))))
  (func (export "run") (result i32)
    (call $start) (i32.const 24) (call $fib) (call $end)))"""

LOOP_WAT = f"""(module {_HOOKS}
  (func (export "run") (result i64) (local $i i32) (local $sum i64)
    (call $start)
    (loop $top
      (local.set $sum (i64.add (local.get $sum) (i64.extend_i32_u (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $top (i32.lt_u (local.get $i) (i32.const 1000000))))
    (call $end)
    (local.get $sum)))"""

SIEVE_N = 100_000
SIEVE_WAT = f"""(module {_HOOKS} (memory 2)
  (func (export "run") (result i32) (local $i i32) (local $j i32) (local $count i32)
    (call $start)
    (local.set $i (i32.const 2))
    (loop $outer
      (if (i32.eqz (i32.load8_u (local.get $i)))
        (then
          (local.set $count (i32.add (local.get $count) (i32.const 1)))
          (local.set $j (i32.add (local.get $i) (local.get $i)))
          (block $done
            (loop $inner
              (br_if $done (i32.ge_u (local.get $j) (i32.const {SIEVE_N})))
              (i32.store8 (local.get $j) (i32.const 1))
              (local.set $j (i32.add (local.get $j) (local.get $i)))
              (br $inner)))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $outer (i32.lt_u (local.get $i) (i32.const {SIEVE_N}))))
    (call $end)
    (local.get $count)))"""


def _fib(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def _count_primes(n: int) -> int:
    composite = bytearray(n)
    for i in range(2, n):
        if not composite[i]:
            composite[2 * i :: i] = b"\1" * len(range(2 * i, n, i))
    return n - 2 - sum(composite[2:])


@dataclass(frozen=True)
class Program:
    """A benchmark program: a micro-program (WAT text, known result) or a Sightglass .wasm file."""

    name: str
    source: str | Path  # WAT text or a .wasm path
    micro_result: int | None = None  # micro-programs: what `run` returns

    @property
    def entry(self) -> str:
        return "run" if self.micro_result is not None else "_start"

    def binary(self) -> bytes:
        """The module's binary (WAT is converted with wasmjit.wat2wasm: all engines get the same bytes)."""
        if isinstance(self.source, Path):
            return self.source.read_bytes()
        import wasmjit
        return wasmjit.wat2wasm(self.source)


def all_programs(sightglass: Path) -> dict[str, Program]:
    """Every program the tool knows, by name: the micro-programs, then the Sightglass ones."""
    micro = [Program("fib", FIB_WAT, _fib(24)), Program("loop", LOOP_WAT, sum(range(1_000_000))),
             Program("bytesieve", SIEVE_WAT, _count_primes(SIEVE_N))]
    shootout = [Program(p.stem, p) for p in sorted(sightglass.glob("shootout-*.wasm"))]
    return {p.name: p for p in micro + shootout}


# --- Engines: each runs one program in this (worker) process -----------------------------------

Hooks = tuple[Callable[[], None], Callable[[], None]]


def run_wasmtime_api(mod: Any, tier: str | None, prog: Program, wasm: bytes, hooks: Hooks,
                     out: Path, err: Path, cwd: Path, verify: dict | None = None) -> tuple[Any, int | None]:
    """Run on wasmjit or wasmtime-py (``mod``), which share wasmtime-py's API; (result, exit status).
    With ``verify`` (a dict), wasmjit verifies code before installing it and the dict receives
    what verification cost (see ``verification``)."""
    config = mod.Config()
    if tier is not None:
        config.tier = tier
    if verify is not None:
        config.verify = True
    engine = mod.Engine(config)
    store = mod.Store(engine)
    module = mod.Module(engine, wasm)
    wasi = mod.WasiConfig()
    wasi.argv = [f"{prog.name}.wasm"]
    wasi.stdout_file, wasi.stderr_file = str(out), str(err)
    wasi.preopen_dir(str(cwd), ".")
    store.set_wasi(wasi)
    linker = mod.Linker(engine)
    linker.define_wasi()
    for name, hook in zip(("start", "end"), hooks, strict=True):
        linker.define_func("bench", name, mod.FuncType([], []), hook)
    entry = linker.instantiate(store, module).exports(store)[prog.entry]
    try:
        return entry(store), None
    except mod.ExitTrap as exit_:
        return None, exit_.code
    finally:
        if verify is not None:
            verify.update(verification(store))


def verification(store: Any) -> dict[str, Any]:
    """What verify-before-install did in a wasmjit store: functions verified and failed, inputs
    compared and skipped, seconds spent."""
    funcs = [f for f in store._store.funcs if getattr(f, "verify_report", None) is not None]
    failed = sum(type(getattr(f, "compile_error", None)).__name__ == "VerificationError"
                 for f in store._store.funcs)
    return {"functions": len(funcs), "failed": failed,
            "inputs": sum(f.verify_report.inputs for f in funcs),
            "skipped": sum(f.verify_report.inconclusive for f in funcs),
            "seconds": sum(f.verify_report.seconds for f in funcs)}


def run_pywasm(prog: Program, wasm: bytes, hooks: Hooks, out: Path, err: Path,
               cwd: Path) -> tuple[Any, int | None]:
    """Run on pywasm: its Preview1 WASI with stdout/stderr in pipes, plus bench.start/end."""
    import io

    import pywasm
    runtime = pywasm.core.Runtime()
    wasi = pywasm.wasi.Preview1([f"{prog.name}.wasm"], {".": str(cwd)}, {})
    pipes = wasi.fd[1].pipe, wasi.fd[2].pipe = io.BytesIO(), io.BytesIO()
    wasi.bind(runtime)
    void = pywasm.core.FuncType([], [])
    runtime.imports["bench"] = {name: runtime.allocate_func_host(void, lambda _m, _a, h=hook: h() or [])
                                for name, hook in zip(("start", "end"), hooks, strict=True)}
    inst = runtime.instance(pywasm.core.ModuleDesc.from_reader(io.BytesIO(wasm)))
    try:
        results = runtime.invocate(inst, prog.entry, [])
        outcome: tuple[Any, int | None] = (results[0] if results else None), None
    except Exception as exc:  # pywasm's proc_exit raises Exception(SystemExit, code)
        if exc.args[:1] != (SystemExit,):
            raise
        outcome = None, exc.args[1]
    for pipe, path in zip(pipes, (out, err), strict=True):
        path.write_bytes(pipe.getvalue())
    return outcome


def run_engine(engine: str, tier: str, prog: Program, wasm: bytes, hooks: Hooks, out: Path, err: Path,
               cwd: Path, verify: dict | None = None) -> tuple[Any, int | None]:
    """Dispatch to the engine's runner."""
    if engine == "pywasm":
        return run_pywasm(prog, wasm, hooks, out, err, cwd)
    if engine == "wasmtime":
        import wasmtime
        return run_wasmtime_api(wasmtime, None, prog, wasm, hooks, out, err, cwd)
    import wasmjit
    return run_wasmtime_api(wasmjit, tier, prog, wasm, hooks, out, err, cwd, verify)


def worker(engine: str, name: str, tier: str, sightglass: Path, verify: bool = False) -> None:
    """One measured run (in a subprocess): print a JSON line with times, result and guest output."""
    prog = all_programs(sightglass)[name]
    wasm = prog.binary()
    marks: dict[str, float] = {}
    hooks = (lambda: marks.__setitem__("start", time.perf_counter()),
             lambda: marks.__setitem__("end", time.perf_counter()))
    report: dict | None = {} if verify and engine == "wasmjit" else None
    with tempfile.TemporaryDirectory(prefix="wasmjit-bench-") as tmp:
        out, err = Path(tmp, "stdout"), Path(tmp, "stderr")
        begin = time.perf_counter()
        result, status = run_engine(engine, tier, prog, wasm, hooks, out, err, sightglass, report)
        total = time.perf_counter() - begin
        stdout, stderr = (p.read_bytes().decode("latin-1") if p.exists() else "" for p in (out, err))
    bench = marks["end"] - marks["start"] if len(marks) == 2 else None
    print(json.dumps({"bench": bench, "total": total, "result": result, "exit": status,
                      "stdout": stdout, "stderr": stderr, "verify": report}))


# --- Harness: subprocess per run, checks, table ----------------------------------------------


def check(prog: Program, run: dict[str, Any]) -> str | None:
    """Why this run's output is wrong, or None if it is right."""
    if run["bench"] is None:
        return "bench.start/bench.end were not both called"
    if prog.micro_result is not None:
        return None if run["result"] == prog.micro_result else f"returned {run['result']}, " \
                                                                f"expected {prog.micro_result}"
    if run["exit"] not in (None, 0):
        return f"exit status {run['exit']}"
    for stream in ("stdout", "stderr"):
        expected = Path(prog.source).with_suffix(f".{stream}.expected").read_bytes().decode("latin-1")
        if run[stream] != expected:
            return f"{stream} differs from {prog.name}.{stream}.expected ({len(run[stream])} bytes, " \
                   f"expected {len(expected)})"
    return None


def run_once(engine: str, prog: Program, args: argparse.Namespace) -> tuple[str, Any]:
    """One run in a subprocess capped at ``args.cap`` s: ("ok", times) or (status, why)."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", engine, prog.name,
           "--tier", args.tier, "--sightglass-dir", str(args.sightglass_dir)]
    cmd += ["--verify"] if args.verify else []
    try:
        proc = subprocess.run(cmd, cwd=args.sightglass_dir, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=args.cap)
    except subprocess.TimeoutExpired:
        return "over cap", f"killed after {args.cap:g} s"
    lines = proc.stdout.splitlines()
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stderr)  # the worker's traceback: the evidence of an engine bug
        return "ERROR", (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
    run = json.loads(lines[-1])
    problem = check(prog, run)
    if problem is not None:
        return "FAILED", problem
    return "ok", {"bench": run["bench"], "total": run["total"], "verify": run.get("verify")}


def repeats(prog: Program, args: argparse.Namespace) -> int:
    """How many runs per engine: --repeat, else 3 for the quick micro-programs and 1 otherwise."""
    return args.repeat or (3 if prog.micro_result is not None else 1)


def measure(prog: Program, engines: list[str], args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """Best of N runs of ``prog`` per engine. Runs alternate between the engines, so that load
    changes on the machine hit all of them alike; an engine stops at its first non-ok run."""
    results: dict[str, dict[str, Any]] = {e: {"status": "ok", "runs": []} for e in engines}
    for _ in range(repeats(prog, args)):
        for engine in engines:
            res = results[engine]
            if res["status"] == "ok":
                res["status"], value = run_once(engine, prog, args)
                if res["status"] == "ok":
                    res["runs"].append(value)
                else:
                    res["detail"] = value
    for engine, res in results.items():
        if res["status"] == "ok":
            res["bench"] = min(r["bench"] for r in res["runs"])
            res["total"] = min(r["total"] for r in res["runs"])
            res["verify"] = res["runs"][0].get("verify")
            shown = f"bench {fmt(res['bench'])} s, total {fmt(res['total'])} s"
            if res["verify"]:
                shown += ", " + verify_text(res["verify"])
        else:
            shown = f"{res['status']}: {res['detail']}"
        print(f"  {prog.name} on {engine}: {shown}", file=sys.stderr, flush=True)
    return results


def verify_text(v: dict[str, Any]) -> str:
    return (f"verified {v['functions']} functions ({v['failed']} failed) on {v['inputs']} inputs "
            f"(+{v['skipped']} skipped) in {fmt(v['seconds'])} s")


def fmt(seconds: float) -> str:
    """Seconds with three significant digits, never in exponent notation."""
    if seconds <= 0:
        return "0"
    return f"{seconds:.{max(0, 2 - math.floor(math.log10(seconds)))}f}"


def cell(res: dict[str, Any] | None, key: str = "bench") -> str:
    """A table cell: the time, or the status when there is none."""
    if res is None:
        return "skipped"
    return fmt(res[key]) if res["status"] == "ok" else res["status"]


def table(suite: str, engines: tuple[str, str], tier: str, programs: list[Program],
          results: dict[str, dict[str, Any]]) -> tuple[str, float | None]:
    """The Markdown table, and the geomean of the ratio column (None without any ratio)."""
    mine, ref = engines
    label = {"wasmjit": f"wasmjit {tier}"}
    head = [f"{label.get(e, e)} (s)" for e in engines]
    if suite == "pywasm":
        head += ["speed-up (×)", f"≥{SPEEDUP_REQUIRED:g}×"]
    else:
        head += ["wasmjit/wasmtime (×)"]
    head += [f"{label.get(e, e)} total (s)" for e in engines]
    lines = ["| program | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    ratios = []
    for prog in programs:
        a, b = results[prog.name].get(mine), results[prog.name].get(ref)
        ratio = None
        if a and b and a["status"] == b["status"] == "ok":
            ratio = b["bench"] / a["bench"] if suite == "pywasm" else a["bench"] / b["bench"]
            ratios.append(ratio)
        row = [prog.name, cell(a), cell(b), "—" if ratio is None else fmt(ratio)]
        if suite == "pywasm":
            row.append("—" if ratio is None else "ok" if ratio >= SPEEDUP_REQUIRED else "**below**")
        row += [cell(a, "total"), cell(b, "total")]
        lines.append("| " + " | ".join(row) + " |")
    geomean = statistics.geometric_mean(ratios) if ratios else None
    if geomean is not None:
        row = [f"geomean (n={len(ratios)})", "", "", fmt(geomean)]
        lines.append("| " + " | ".join(row + [""] * (len(head) + 1 - len(row))) + " |")
    return "\n".join(lines), geomean


def plot(path: str, suite: str, tier: str, programs: list[Program], results: dict[str, dict[str, Any]],
         geomean: float | None, info: dict[str, str]) -> None:
    """A horizontal bar per program: wasmjit's bench time over the reference engine's (log scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ref = "pywasm" if suite == "pywasm" else "wasmtime"
    names, ratios = [], []
    for prog in programs:
        mine, other = results[prog.name].get("wasmjit"), results[prog.name].get(ref)
        if mine and other and mine["status"] == other["status"] == "ok":
            names.append(prog.name.removeprefix("shootout-"))
            ratios.append(mine["bench"] / other["bench"])
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(names) + 1.6))
    ax.barh(names[::-1], ratios[::-1], color="tab:blue")
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", linewidth=0.8)
    if geomean is not None:
        ax.axvline(geomean, color="tab:red", linestyle="--", label=f"geomean {geomean:.2f}×")
        ax.legend(loc="lower right")
    ax.set_xlabel(f"wasmjit {tier} time / {ref} time (bench phase, lower is better)")
    ax.set_title(f"Sightglass: wasmjit {tier} vs {ref} ({info['cpu']})", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def machine_info() -> dict[str, str]:
    """CPU model, Python and engine versions."""
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    git = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=ROOT, capture_output=True,
                         text=True).stdout.strip()
    info = {"cpu": f"{cpu} ({os.cpu_count()} CPUs)", "python": platform.python_version(),
            "wasmjit": f"{version('wasmjit')} ({git or 'no git'})"}
    for dist in ("wasmtime", "pywasm"):
        try:
            info[dist] = version(dist)
        except Exception:
            info[dist] = "not installed"
    return info


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options (see the module docstring, shown by --help)."""
    from wasmjit.api import TIERS

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite", choices=("pywasm", "sightglass"), default="pywasm",
                        help="pywasm: wasmjit vs pywasm (default); sightglass: wasmjit vs wasmtime")
    parser.add_argument("--tier", choices=TIERS, default="interp", help="wasmjit's tier (default: interp)")
    parser.add_argument("--verify", action="store_true",
                        help="wasmjit with Config.verify (verify-before-install; tier tiered)")
    parser.add_argument("--only", metavar="A,B,...",
                        help="only these programs (names as in the table; 'shootout-' may be left out)")
    parser.add_argument("--repeat", type=int, metavar="N",
                        help="best of N runs (default: 3 for micro-programs, 1 for Sightglass programs)")
    parser.add_argument("--cap", type=float, metavar="SECONDS",
                        help="kill a run after this many seconds and report 'over cap' (default: "
                             f"{DEFAULT_CAP['pywasm']:g} for suite pywasm: pywasm needs 30-170 s on the "
                             f"Sightglass programs; {DEFAULT_CAP['sightglass']:g} for suite sightglass)")
    parser.add_argument("--skip-pywasm", action="store_true", help="do not run pywasm (suite pywasm)")
    parser.add_argument("--json", metavar="OUT", help="also write the raw numbers to this JSON file")
    parser.add_argument("--plot", metavar="PNG", help="also draw the ratio per program (needs matplotlib)")
    parser.add_argument("--sightglass-dir", type=Path, default=DEFAULT_SIGHTGLASS, metavar="DIR",
                        help=f"the Sightglass programs (default: {DEFAULT_SIGHTGLASS})")
    parser.add_argument("--worker", nargs=2, metavar=("ENGINE", "PROGRAM"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.sightglass_dir = args.sightglass_dir.resolve()
    args.cap = args.cap or DEFAULT_CAP[args.suite]
    if args.worker is None:
        import wasmjit
        try:
            config = wasmjit.Config()
            config.tier = args.tier
            config.verify = args.verify
            wasmjit.Engine(config)
        except wasmjit.WasmjitError as err:
            parser.error(str(err))
        if not args.sightglass_dir.is_dir():
            parser.error(f"no Sightglass folder at {args.sightglass_dir}")
        if args.repeat is not None and args.repeat < 1:
            parser.error("--repeat must be at least 1")
    return args


def select(args: argparse.Namespace) -> list[Program]:
    """The programs of the chosen suite, filtered by --only."""
    known = all_programs(args.sightglass_dir)
    if args.suite == "pywasm":
        names = [n for n, p in known.items() if p.micro_result is not None] + list(PYWASM_SIGHTGLASS)
    else:
        names = [n for n in known if n.startswith("shootout-")]
    if args.only:
        wanted = [w.strip() for w in args.only.split(",") if w.strip()]
        unknown = [w for w in wanted if w not in known and f"shootout-{w}" not in known]
        if unknown:
            sys.exit(f"error: unknown program(s): {', '.join(unknown)} (known: {', '.join(known)})")
        chosen = {w if w in known else f"shootout-{w}" for w in wanted}
        names = [n for n in known if n in chosen]  # --only may pick programs of either suite
    return [known[n] for n in names]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker is not None:
        worker(args.worker[0], args.worker[1], args.tier, args.sightglass_dir, args.verify)
        return 0
    engines = ("wasmjit", "pywasm") if args.suite == "pywasm" else ("wasmjit", "wasmtime")
    programs = select(args)
    info = machine_info()
    results: dict[str, dict[str, Any]] = {}
    runnable = [e for e in engines if not (e == "pywasm" and args.skip_pywasm)]
    for prog in programs:
        results[prog.name] = measure(prog, runnable, args)
    shown_tier = args.tier + (" --verify" if args.verify else "")
    text, geomean = table(args.suite, engines, shown_tier, programs, results)
    print(text)
    print()
    best_of = "/".join(str(n) for n in sorted({repeats(p, args) for p in programs}, reverse=True))
    print("Bench phase (between bench.start and bench.end) and total (load + compile + run) in seconds, "
          f"best of {best_of} run(s), one subprocess per run; cap {args.cap:g} s per run.")
    print(f"Machine: {info['cpu']}, Python {info['python']}, wasmjit {info['wasmjit']}, "
          f"wasmtime {info['wasmtime']}, pywasm {info['pywasm']}.")
    if args.verify:
        print()
        for prog in programs:
            res = results[prog.name].get("wasmjit")
            if res and res.get("verify"):
                print(f"- {prog.name}: {verify_text(res['verify'])}")
    problems = [(p, e, r) for p, per_engine in results.items() for e, r in per_engine.items()
                if r["status"] in ("FAILED", "ERROR")]
    for prog_name, engine, res in problems:
        print(f"- {res['status']}: {prog_name} on {engine}: {res['detail']}")
    if args.plot:
        plot(args.plot, args.suite, shown_tier, programs, results, geomean, info)
    if args.json:
        Path(args.json).write_text(json.dumps({"suite": args.suite, "tier": args.tier, "cap": args.cap,
                                               "repeat": args.repeat, "machine": info, "geomean": geomean,
                                               "results": results}, indent=2) + "\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
