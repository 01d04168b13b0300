#!/usr/bin/env python3
"""Run the WASI preview1 conformance suite (WebAssembly/wasi-testsuite) on wasmjit or wasmtime-py.

Usage: tools/wasi_testsuite.py [--tier T] [--engine wasmjit|wasmtime] [--only SUBSTR] [--json OUT]
                               [-j N] [--timeout S] [-v] [SUITE_DIRS...]

A suite is a directory of ``NAME.wasm`` test cases (default: c, rust and assemblyscript under
../shared/wasi-testsuite beside the clone, or $WASMJIT_WASI_TESTSUITE_DIR). Each case has an
optional ``NAME.json`` specification (SPECIFICATION.md of the suite), in the legacy form (args,
env, root, exit_code, stdout, stderr) or the operation-based form (``operations`` of type run,
read and wait). Cases that need a WASI proposal, another world or any other operation (sockets,
http, stdin writes) are skipped with the reason.

Every run is a fresh subprocess, ``python -m wasmjit run --tier T [--dir ROOT::/] [--env K=V]...
MODULE ARGS...`` (for ``--engine wasmtime``: this script's wasmtime-py worker), in a new temporary
directory that holds a user-writable copy of the case's ``root`` (its ``*.cleanup`` artifacts
removed), with stdin from /dev/null, a child environment holding only what Python needs, and a
timeout. Checks: the exit status, and the stdout/stderr a spec gives; a legacy ``stdout`` or
``stderr`` must equal the whole stream, an operation's ``read`` consumes the next ``len(payload)``
characters of it (as the suite's reference runner does).

Cases listed in tests/wasi/expected_failures.toml (``"suite/NAME" = "reason"``) are expected to
fail; one that passes is reported as unexpectedly passed. The exit status is 1 if any other case
fails, 2 on a setup error.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

REPO = Path(__file__).resolve().parents[1]
SUITE_ROOT = Path(os.environ.get("WASMJIT_WASI_TESTSUITE_DIR") or REPO.parent / "shared" / "wasi-testsuite")
DEFAULT_SUITES = ("c", "rust", "assemblyscript")
EXPECTED_FAILURES = REPO / "tests" / "wasi" / "expected_failures.toml"
DEFAULT_TIMEOUT = 120.0
EXIT_TRAP = 134  # as wasmtime: 128 + SIGABRT
ENGINES = ("wasmjit", "wasmtime")

# Keys of the two specification forms (a spec must not mix them).
LEGACY_KEYS = {"args", "root", "env", "exit_code", "stdout", "stderr"}
OPERATION_KEYS = {"operations", "proposals", "world", "servers"}
CLI_WORLD = "wasi:cli/command"
# Environment variables the child Python process may inherit; the guest's come from --env only.
CHILD_ENV_KEEP = ("PATH", "SYSTEMROOT", "TMPDIR", "TEMP", "TMP", "LANG", "LC_ALL", "LC_CTYPE")

Stream = Literal["stdout", "stderr"]
Outcome = Literal["pass", "fail", "xfail", "xpass", "skip"]


class SpecError(ValueError):
    """A test specification (NAME.json) or expected_failures.toml is malformed."""


@dataclass(frozen=True)
class Read:
    """Expected output on a stream: all of it (``whole``) or the next ``len(payload)`` characters."""

    stream: Stream
    payload: str
    whole: bool


@dataclass(frozen=True)
class Step:
    """One ``run`` of the module with the ``read`` checks on its output and its ``wait`` exit code."""

    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    root: Path | None = None  # absolute host path of the directory preopened as "/"
    reads: tuple[Read, ...] = ()
    exit_code: int = 0


@dataclass(frozen=True)
class TestCase:
    """A ``.wasm`` test case and its parsed specification."""

    suite: str
    name: str
    wasm: Path
    steps: tuple[Step, ...]
    skip_reason: str | None = None

    @property
    def id(self) -> str:
        return f"{self.suite}/{self.name}"


@dataclass
class Result:
    """What running one case found; ``failures`` is empty when every check passed."""

    case: TestCase
    failures: list[str] = field(default_factory=list)
    exit_codes: list[int | None] = field(default_factory=list)
    duration_s: float = 0.0
    skipped: bool = False

    @property
    def passed(self) -> bool:
        return not self.skipped and not self.failures

    @property
    def reason(self) -> str:
        return "; ".join(self.failures)


# ---------------------------------------------------------------- specifications and discovery


def _str_list(value: Any, what: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SpecError(f"{what} must be a list of strings")
    return tuple(value)


def _env(value: Any, what: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise SpecError(f"{what} must be an object of strings")
    return tuple(value.items())


def _root(value: Any, folder: Path, what: str) -> Path | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise SpecError(f"{what} must be a string")
    root = (folder / value).resolve()
    if not root.is_dir():
        raise SpecError(f"{what}: {root} is not a directory")
    return root


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise SpecError(f"{what} must be an integer")
    return value


def _legacy_steps(spec: dict[str, Any], folder: Path) -> tuple[Step, ...]:
    reads = []
    for stream in ("stdout", "stderr"):
        if spec.get(stream) is not None:
            if not isinstance(spec[stream], str):
                raise SpecError(f"{stream!r} must be a string")
            reads.append(Read(stream, spec[stream], whole=True))
    return (Step(args=_str_list(spec.get("args", []), "'args'"),
                 env=_env(spec.get("env", {}), "'env'"),
                 root=_root(spec.get("root"), folder, "'root'"),
                 reads=tuple(reads),
                 exit_code=_int(spec.get("exit_code", 0), "'exit_code'")),)


def _operation_steps(ops: Any, folder: Path) -> tuple[tuple[Step, ...], str | None]:
    """The run/read/wait operations as steps, or a skip reason for an operation we do not drive."""
    if not isinstance(ops, list) or not all(isinstance(op, dict) for op in ops):
        raise SpecError("'operations' must be a list of objects")
    steps: list[Step] = []
    current: Step | None = None
    for i, op in enumerate(ops):
        kind, what = op.get("type"), f"operation {i}"
        if kind == "run":
            if current is not None:
                raise SpecError(f"{what}: 'run' before the previous run's 'wait'")
            current = Step(args=_str_list(op.get("args", []), f"{what}: 'args'"),
                           env=_env(op.get("env", {}), f"{what}: 'env'"),
                           root=_root(op.get("root"), folder, f"{what}: 'root'"))
        elif kind == "read":
            stream, payload = op.get("id", "stdout"), op.get("payload", "")
            if current is None:
                raise SpecError(f"{what}: 'read' outside a run")
            if stream not in ("stdout", "stderr") or not isinstance(payload, str):
                raise SpecError(f"{what}: 'read' needs id stdout or stderr and a string payload")
            current = Step(current.args, current.env, current.root,
                           (*current.reads, Read(stream, payload, whole=False)))
        elif kind == "wait":
            if current is None:
                raise SpecError(f"{what}: 'wait' without a run")
            exit_code = _int(op.get("exit_code", 0), f"{what}: 'exit_code'")
            steps.append(Step(current.args, current.env, current.root, current.reads, exit_code))
            current = None
        elif isinstance(kind, str):
            return (), f"operation {kind!r} is not supported by this runner"
        else:
            raise SpecError(f"{what} has no 'type'")
    if current is not None:
        raise SpecError("the last 'run' has no 'wait'")
    return tuple(steps), None


def load_case(wasm: Path, suite: str | None = None) -> TestCase:
    """The case of one ``.wasm`` file, from its ``.json`` specification or the default one."""
    suite = suite or wasm.parent.name
    spec_file = wasm.with_suffix(".json")
    spec: Any = {}
    if spec_file.is_file():
        try:
            spec = json.loads(spec_file.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise SpecError(f"{spec_file}: {err}") from err
    if not isinstance(spec, dict):
        raise SpecError(f"{spec_file}: not a JSON object")
    keys = set(spec)
    try:
        if keys & OPERATION_KEYS and keys & LEGACY_KEYS:
            raise SpecError("mixes the legacy and the operation-based keys")
        if not keys & OPERATION_KEYS:
            return TestCase(suite, wasm.stem, wasm, _legacy_steps(spec, wasm.parent))
        default_ops = [{"type": "run"}, {"type": "wait"}]
        steps, skip = _operation_steps(spec.get("operations") or default_ops, wasm.parent)
        proposals = _str_list(spec.get("proposals") or [], "'proposals'")
        world = spec.get("world", CLI_WORLD)
        if proposals:
            skip = f"needs WASI proposals: {', '.join(proposals)}"
        elif world != CLI_WORLD:
            skip = f"targets the world {world}"
        elif spec.get("servers"):
            skip = "needs HTTP servers"
        return TestCase(suite, wasm.stem, wasm, steps, skip)
    except SpecError as err:
        raise SpecError(f"{spec_file}: {err}") from err


def default_suite_dirs() -> list[Path]:
    return [SUITE_ROOT / name for name in DEFAULT_SUITES]


def discover(suite_dirs: Iterable[Path]) -> list[TestCase]:
    """Every case of the suites, sorted by suite then name; SpecError if a suite has none."""
    cases: list[TestCase] = []
    for folder in suite_dirs:
        wasms = sorted(Path(folder).glob("*.wasm"))
        if not wasms:
            raise SpecError(f"no .wasm test cases in {folder}")
        cases += [load_case(wasm, Path(folder).name) for wasm in wasms]
    return cases


def load_expected_failures(path: Path = EXPECTED_FAILURES) -> dict[str, str]:
    """Case id ("suite/NAME") -> reason, from the expected-failures file (empty if absent)."""
    if not path.is_file():
        return {}
    try:
        table = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise SpecError(f"{path}: {err}") from err
    bad = [key for key, reason in table.items() if not isinstance(reason, str) or "/" not in key]
    if bad:
        raise SpecError(f"{path}: entries must be \"suite/NAME\" = \"reason\"; bad: {bad}")
    return dict(table)


# ---------------------------------------------------------------- running


def _make_writable(top: Path) -> None:
    """chmod u+w everything under ``top`` (the suite is read-only), symlinks left alone."""
    for folder, dirs, files in os.walk(top):
        for name in (folder, *(os.path.join(folder, n) for n in dirs + files)):
            if not os.path.islink(name):
                os.chmod(name, os.stat(name).st_mode | stat.S_IWUSR)


def remove_cleanup_artifacts(top: Path) -> None:
    """Delete the ``*.cleanup`` files and directories under ``top`` (SPECIFICATION.md)."""
    for path in sorted(top.glob("**/*.cleanup"), reverse=True):
        if path.is_symlink() or not path.exists():
            continue
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def _child_env() -> dict[str, str]:
    env = {key: os.environ[key] for key in CHILD_ENV_KEEP if key in os.environ}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def command(engine: str, tier: str, step: Step, module: Path, host_root: Path | None) -> list[str]:
    """The argv that runs ``module`` for ``step`` on ``engine``."""
    if engine == "wasmjit":
        argv = [sys.executable, "-P", "-m", "wasmjit", "run", "--tier", tier]
        if host_root is not None:
            argv += ["--dir", f"{host_root}::/"]
        for key, value in step.env:
            argv += ["--env", f"{key}={value}"]
        return [*argv, str(module), *step.args]
    if engine == "wasmtime":
        payload = {"argv": [str(module), *step.args], "env": step.env, "module": str(module),
                   "root": None if host_root is None else str(host_root)}
        return [sys.executable, "-P", str(Path(__file__).resolve()), "--worker-wasmtime",
                json.dumps(payload)]
    raise ValueError(f"unknown engine {engine!r}: expected one of {', '.join(ENGINES)}")


def _clip(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def short_diff(expected: str, actual: str) -> str:
    """Where two outputs first differ, with a little context."""
    at = next((i for i, (a, b) in enumerate(zip(expected, actual, strict=False)) if a != b),
              min(len(expected), len(actual)))
    start = max(0, at - 10)
    return (f"at char {at}: expected {_clip(expected[start:at + 40])}, "
            f"got {_clip(actual[start:at + 40])} (lengths {len(expected)}, {len(actual)})")


def stderr_summary(text: str, limit: int = 200) -> str:
    """The telling line of a failed run's stderr: a Rust panic and its message, a Python
    exception, the engine's first ``error:`` line, or else the last line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    panic = next((i for i, line in enumerate(lines) if "panicked at" in line), None)
    if panic is not None:
        where = lines[panic][lines[panic].index("panicked at"):]  # without "thread 'main' (1)"
        summary = " ".join([re.sub(r"at \S*/", "at ", where), *lines[panic + 1:panic + 2]])
    elif any(line.startswith("Traceback") for line in lines):
        summary = lines[-1]
    else:
        summary = next((line for line in lines if line.startswith("error:")), lines[-1] if lines else "")
    return summary if len(summary) <= limit else summary[:limit] + "..."


def _check_step(step: Step, exit_code: int, out: dict[Stream, str]) -> list[str]:
    failures = []
    if exit_code != step.exit_code:
        message = f"exit code {exit_code} != {step.exit_code}"
        if tail := stderr_summary(out["stderr"]):
            message += f" (stderr: {tail})"
        failures.append(message)
    position: dict[Stream, int] = {"stdout": 0, "stderr": 0}
    for read in step.reads:
        text = out[read.stream]
        if read.whole:
            if text != read.payload:
                failures.append(f"{read.stream} differs {short_diff(read.payload, text)}")
            continue
        start = position[read.stream]
        chunk = text[start:start + len(read.payload)]
        position[read.stream] = start + len(read.payload)
        if chunk != read.payload:
            failures.append(f"read {read.stream} at char {start} differs "
                            f"{short_diff(read.payload, chunk)}")
    return failures


def run_case(case: TestCase, engine: str = "wasmjit", tier: str = "interp",
             timeout: float = DEFAULT_TIMEOUT) -> Result:
    """Run every step of ``case`` in a fresh temporary directory and check it."""
    result = Result(case)
    if case.skip_reason is not None:
        result.skipped = True
        return result
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="wasi-testsuite-", ignore_cleanup_errors=True) as tmp:
        workdir = Path(tmp)
        roots: dict[Path, Path] = {}  # suite root -> its copy, shared by the steps of the case
        for number, step in enumerate(case.steps, 1):
            host_root = None
            if step.root is not None:
                if step.root not in roots:
                    roots[step.root] = workdir / f"root{len(roots)}"
                    shutil.copytree(step.root, roots[step.root], symlinks=True)
                    _make_writable(roots[step.root])
                host_root = roots[step.root]
                remove_cleanup_artifacts(host_root)
            prefix = f"run {number}: " if len(case.steps) > 1 else ""
            try:
                proc = subprocess.run(command(engine, tier, step, case.wasm, host_root), cwd=workdir,
                                      env=_child_env(), stdin=subprocess.DEVNULL, capture_output=True,
                                      timeout=timeout, check=False)
            except subprocess.TimeoutExpired:
                result.exit_codes.append(None)
                result.failures.append(f"{prefix}timeout after {timeout:g} s")
                break
            except OSError as err:
                result.exit_codes.append(None)
                result.failures.append(f"{prefix}could not start: {err}")
                break
            result.exit_codes.append(proc.returncode)
            out: dict[Stream, str] = {"stdout": proc.stdout.decode("utf-8", "replace"),
                                      "stderr": proc.stderr.decode("utf-8", "replace")}
            failures = _check_step(step, proc.returncode, out)
            result.failures += [prefix + failure for failure in failures]
            if failures:
                break
    result.duration_s = time.monotonic() - start
    return result


def outcome(result: Result, expected_failure: str | None) -> Outcome:
    if result.skipped:
        return "skip"
    if expected_failure is not None:
        return "xpass" if result.passed else "xfail"
    return "pass" if result.passed else "fail"


# ---------------------------------------------------------------- the wasmtime-py worker


def wasmtime_worker(payload: str) -> int:
    """Run one case on wasmtime-py as the CLI would: guest output on our stdout/stderr, exit status."""
    import wasmtime

    spec = json.loads(payload)
    engine = wasmtime.Engine()
    store = wasmtime.Store(engine)
    error = ""
    code = 0
    with tempfile.TemporaryDirectory(prefix="wasi-wasmtime-") as tmp:
        out_file, err_file = os.path.join(tmp, "stdout"), os.path.join(tmp, "stderr")
        wasi = wasmtime.WasiConfig()
        wasi.argv = spec["argv"]
        wasi.env = spec["env"]
        if spec["root"] is not None:
            wasi.preopen_dir(spec["root"], "/")
        wasi.inherit_stdin()
        wasi.stdout_file = out_file
        wasi.stderr_file = err_file
        store.set_wasi(wasi)
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        try:
            instance = linker.instantiate(store, wasmtime.Module.from_file(engine, spec["module"]))
            start = instance.exports(store).get("_start")
            if isinstance(start, wasmtime.Func):
                start(store)
        except wasmtime.ExitTrap as exit_:
            code = exit_.code
        except wasmtime.Trap as trap:
            code, error = EXIT_TRAP, f"error: {trap}"
        except wasmtime.WasmtimeError as err:
            code, error = 1, f"error: {err}"
        for name, stream in ((out_file, sys.stdout.buffer), (err_file, sys.stderr.buffer)):
            if os.path.exists(name):
                with open(name, "rb") as captured:
                    shutil.copyfileobj(captured, stream)
            stream.flush()
    if error:
        print(error.rstrip(), file=sys.stderr)
    return code


# ---------------------------------------------------------------- the command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Run the WASI testsuite on wasmjit or wasmtime-py.")
    parser.add_argument("suites", nargs="*", type=Path, metavar="SUITE_DIRS",
                        help=f"directories of .wasm cases (default: {', '.join(DEFAULT_SUITES)} "
                             f"under {SUITE_ROOT})")
    parser.add_argument("--tier", default="interp", help="wasmjit execution tier (default: interp)")
    parser.add_argument("--engine", choices=ENGINES, default="wasmjit")
    parser.add_argument("--only", metavar="SUBSTR", help="run only the cases whose suite/NAME contains this")
    parser.add_argument("--json", type=Path, metavar="OUT", help="also write the results as JSON here")
    parser.add_argument("-j", "--jobs", type=int, default=os.cpu_count() or 1, metavar="N",
                        help="cases run in parallel (default: the CPU count)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="S",
                        help=f"seconds per run before it fails as a timeout (default: {DEFAULT_TIMEOUT:g})")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every case as it finishes")
    return parser


def _report(rows: list[tuple[Result, Outcome]], expected: dict[str, str], title: str) -> None:
    columns: tuple[Outcome, ...] = ("pass", "fail", "xfail", "xpass", "skip")
    headers = ("suite", "passed", "failed", "xfail", "xpass", "skipped", "total")
    suites = list(dict.fromkeys(result.case.suite for result, _ in rows))
    table = []
    for suite in [*suites, None]:
        got = [o for r, o in rows if suite is None or r.case.suite == suite]
        table.append([suite or "total", *(str(got.count(c)) for c in columns), str(len(got))])
    widths = [max(len(h), *(len(line[i]) for line in table)) for i, h in enumerate(headers)]
    print(title)
    for line in [list(headers), *table]:
        print("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                        for i, (cell, w) in enumerate(zip(line, widths, strict=True))))
    sections: list[tuple[str, Outcome]] = [("failed", "fail"), ("expected failures", "xfail"),
                                           ("unexpectedly passed (remove from expected_failures.toml)",
                                            "xpass"), ("skipped", "skip")]
    for heading, wanted in sections:
        listed = [r for r, o in rows if o == wanted]
        if listed:
            print(f"\n{heading}:")
        for result in listed:
            why = {"fail": result.reason, "xfail": f"{expected.get(result.case.id)} [{result.reason}]",
                   "xpass": expected.get(result.case.id), "skip": result.case.skip_reason}[wanted]
            print(f"  {result.case.id}: {why}")


def _write_json(path: Path, rows: list[tuple[Result, Outcome]], engine: str, tier: str) -> None:
    data = {
        "engine": engine,
        "tier": tier if engine == "wasmjit" else None,
        "results": [{"id": r.case.id, "suite": r.case.suite, "name": r.case.name, "outcome": o,
                     "failures": r.failures, "skip_reason": r.case.skip_reason,
                     "exit_codes": r.exit_codes, "duration_s": round(r.duration_s, 3)}
                    for r, o in rows],
    }
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--worker-wasmtime"] and len(argv) == 2:
        return wasmtime_worker(argv[1])
    args = _parser().parse_args(argv)
    try:
        cases = discover(args.suites or default_suite_dirs())
        expected = load_expected_failures()
    except SpecError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.only:
        cases = [case for case in cases if args.only in case.id]
    if not args.only and not args.suites:
        known = {case.id for case in cases}
        for stale in sorted(set(expected) - known):
            print(f"warning: {EXPECTED_FAILURES.name} names no test case: {stale}", file=sys.stderr)

    rows: list[tuple[Result, Outcome]] = []
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(run_case, case, args.engine, args.tier, args.timeout) for case in cases]
        for future in as_completed(futures):
            result = future.result()
            rows.append((result, outcome(result, expected.get(result.case.id))))
            if args.verbose:
                res, out = rows[-1]
                detail = f"  {res.reason or res.case.skip_reason or ''}" if out in ("fail", "skip") else ""
                print(f"{out.upper():5} {res.case.id} ({res.duration_s:.1f} s){detail}", flush=True)
    rows.sort(key=lambda row: (row[0].case.suite, row[0].case.name))

    engine = args.engine if args.engine == "wasmtime" else f"wasmjit --tier {args.tier}"
    _report(rows, expected, f"WASI testsuite on {engine}: {len(rows)} cases")
    if args.json:
        _write_json(args.json, rows, args.engine, args.tier)
    return 1 if any(o == "fail" for _, o in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
