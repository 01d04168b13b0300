"""Mutation fuzzing of the decoder, validator and instantiation: ``wasmjit fuzz --mutate``.

Every input is a mutated module: ``wasm-tools mutate`` of a seed (sometimes chained, sometimes
``--preserve-semantics``), or byte-level damage to a seed or to such a mutant (bit flips, special
bytes, huge LEB128 values, insertions, deletions, truncation, splices), applied to the whole
file or inside one section or one function body with the enclosing sizes fixed up so that the
damage reaches past the section framing. Seeds are the binary modules of the spec suite
(``wasm-tools json-from-wast`` of ``/work/shared/spec/wasm-2.0/*.wast`` without the SIMD files,
cached as the spec runner caches them) plus a few ``wasm-tools smith`` modules, or ``--corpus``.

Each input goes through decode -> validate -> instantiate (a linker with spectest-like imports
and unknown function imports defined as traps; instantiation runs the start function) in one of
a few long-lived worker processes (``--worker``), so a segfault, an abort or a hang is a finding
instead of the end of the fuzzer. Findings:

* ``exception``: anything raised that is not a :class:`~wasmjit.errors.WasmjitError`;
* ``crash``: the worker died (signal or exit);
* ``timeout``: the worker did not answer within ``--timeout`` seconds -- unless the module has a
  start function that wasmtime cannot finish within a fuel budget either (a module that loops
  forever is not an engine bug; those count as ``hang``).

A finding is written to ``<out>/<kind>-<hash>.wasm`` with a one-line ``.txt`` description, shrunk
(``wasm-tools shrink`` with a predicate that re-runs the input in a fresh process, for inputs
that are valid modules; a byte-level reducer otherwise) and printed with the command that
reproduces it: ``python -m wasmjit.fuzz.mutate --repro FILE``.

Imports: errors, wat, wast (corpus extraction); the engine only inside the workers.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import queue
import random
import select
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SPEC_DIR = Path("/work/shared/spec/wasm-2.0")
DEFAULT_TIMEOUT = 10.0  # seconds per input
WORKERS = 2
WASMTIME_FUEL = 20_000_000  # a start function wasmtime cannot finish with this much fuel "hangs"
MAX_INPUT = 1 << 22  # a seed or mutant larger than this (4 MiB) is skipped

# Outcomes of an input that are not findings, in the order the progress line shows them.
OUTCOMES = ("decode", "validate", "unsupported", "link", "trap", "ok", "limit", "hang")
FINDING_KINDS = ("exception", "crash", "timeout")


# --- Running one input (inside a worker) ----------------------------------------------------


_ENGINE: Any = None


def _engine() -> Any:
    global _ENGINE
    if _ENGINE is None:
        from .. import api

        _ENGINE = api.Engine()
    return _ENGINE


def _define_spectest(api: Any, store: Any, linker: Any) -> None:
    """The spec test harness's `spectest` module: globals, a table, a memory, print functions."""
    vt = api.ValType
    for name, valtype, value in (("global_i32", vt.i32(), 666), ("global_i64", vt.i64(), 666),
                                 ("global_f32", vt.f32(), 666.6), ("global_f64", vt.f64(), 666.6)):
        linker.define(store, "spectest", name, api.Global(store, api.GlobalType(valtype, False), value))
    linker.define(store, "spectest", "table",
                  api.Table(store, api.TableType(vt.funcref(), api.Limits(10, 20)), None))
    linker.define(store, "spectest", "memory", api.Memory(store, api.MemoryType(api.Limits(1, 2))))
    prints = {"print": [], "print_i32": [vt.i32()], "print_i64": [vt.i64()], "print_f32": [vt.f32()],
              "print_f64": [vt.f64()], "print_i32_f32": [vt.i32(), vt.f32()],
              "print_f64_f64": [vt.f64(), vt.f64()]}
    for name, params in prints.items():
        linker.define_func("spectest", name, api.FuncType(params, []), lambda *args: None)


def innermost_frame(exc: BaseException) -> str:
    """``file:line in function`` of the frame that raised ``exc`` (paths inside wasmjit are
    relative to the package's parent directory)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "?"
    frame = frames[-1]
    root = str(Path(__file__).resolve().parents[2]) + os.sep
    path = frame.filename.removeprefix(root)
    return f"{path}:{frame.lineno} in {frame.name}"


def check(data: bytes, on_start: Callable[[], None] | None = None) -> dict[str, Any]:
    """Decode, validate and instantiate ``data``; the outcome as a JSON-able dict.

    ``outcome`` is one of :data:`OUTCOMES` (``limit``: a WasmjitError that is none of the
    specific classes, e.g. an implementation limit) or ``exception`` with ``type``, ``message``
    and ``frame`` (innermost traceback frame). ``on_start`` is called just before instantiating
    a module that has a start function.
    """
    from .. import api
    from ..errors import DecodeError, LinkError, Trap, UnsupportedError, ValidationError, WasmjitError

    result: dict[str, Any] = {}
    try:
        engine = _engine()
        module = api.Module(engine, data)
        result["start"] = module._vmod.module.start is not None
        store = api.Store(engine)
        linker = api.Linker(engine)
        linker.allow_shadowing = True
        _define_spectest(api, store, linker)
        linker.define_unknown_imports_as_traps(module)
        if result["start"] and on_start is not None:
            on_start()
        linker.instantiate(store, module)
        result["outcome"] = "ok"
    except WasmjitError as err:
        kinds = ((DecodeError, "decode"), (ValidationError, "validate"), (UnsupportedError, "unsupported"),
                 (LinkError, "link"), (Trap, "trap"))
        result["outcome"] = next((kind for cls, kind in kinds if isinstance(err, cls)), "limit")
        result["message"] = _one_line(str(err))
    except BaseException as exc:  # noqa: BLE001 - every other exception is what we hunt for
        if isinstance(exc, KeyboardInterrupt):
            raise
        result["outcome"] = "exception"
        result["type"] = type(exc).__name__
        result["message"] = _one_line(str(exc))
        result["frame"] = innermost_frame(exc)
        result["traceback"] = "".join(traceback.format_exception(exc))[-4000:]
    return result


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def worker_main() -> int:
    """``--worker``: read length-prefixed inputs on stdin, answer JSON lines on stdout.

    Before instantiating a module with a start function it sends ``{"phase": "start"}`` so that
    the parent can tell a start function that runs forever from a hang in the engine itself.
    """
    stdin = sys.stdin.buffer
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr  # anything the engine prints must not corrupt the protocol

    def send(obj: dict[str, Any]) -> None:
        out.write(json.dumps(obj) + "\n")
        out.flush()

    import gc

    done = 0
    while True:
        header = stdin.read(4)
        if len(header) < 4:
            return 0
        (size,) = struct.unpack("<I", header)
        data = stdin.read(size)
        send(check(data, lambda: send({"phase": "start"})))
        done += 1
        if done % 50 == 0:
            gc.collect()  # stores hold reference cycles; free their linear memories


class Worker:
    """A long-lived ``--worker`` subprocess; restarted after a crash or a timeout."""

    def __init__(self, timeout: float, command: Sequence[str] | None = None, tier: str | None = None) -> None:
        self.timeout = timeout
        self.tier = tier  # the engine's tier in the worker (None: the default, tiered)
        # tests replace the command by a script that breaks the engine on purpose
        self.command = list(command or [sys.executable, "-m", "wasmjit.fuzz.mutate", "--worker"])
        self.proc: subprocess.Popen[bytes] | None = None

    def _spawn(self) -> subprocess.Popen[bytes]:
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env.pop("WASMJIT_TIER", None)
        if self.tier:
            env["WASMJIT_TIER"] = self.tier
        return subprocess.Popen(self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL,
                                env=env, start_new_session=True)

    def run(self, data: bytes) -> dict[str, Any]:
        """The worker's answer for ``data``, or ``crash``/``timeout`` (the worker is then gone)."""
        if self.proc is None or self.proc.poll() is not None:
            self.proc = self._spawn()
        proc = self.proc
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(struct.pack("<I", len(data)) + data)
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return self._crashed()
        deadline = time.monotonic() + self.timeout
        started = False
        buf = b""
        fd = proc.stdout.fileno()
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.stop()
                return {"outcome": "timeout", "start": started}
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return self._crashed()
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                msg = json.loads(line)
                if msg.get("phase") == "start":
                    started = True
                    continue
                return msg

    def _crashed(self) -> dict[str, Any]:
        proc = self.proc
        self.proc = None
        code = None
        if proc is not None:
            try:
                code = proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                code = proc.wait()
            _close_pipes(proc)
        if code is not None and code < 0:
            try:
                how = signal.Signals(-code).name
            except ValueError:
                how = f"signal {-code}"
        else:
            how = f"exit status {code}"
        return {"outcome": "crash", "type": how, "message": f"the worker died ({how})"}

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()
        _close_pipes(proc)


def _close_pipes(proc: subprocess.Popen[bytes]) -> None:
    for stream in (proc.stdin, proc.stdout):
        try:
            stream.close()  # type: ignore[union-attr]
        except OSError:
            pass


# --- Is a start function's hang the module's fault? -----------------------------------------


_WASMTIME_PROBE = """
import sys, wasmtime as w
cfg = w.Config(); cfg.consume_fuel = True
engine = w.Engine(cfg); store = w.Store(engine); store.set_fuel(int(sys.argv[1]))
module = w.Module(engine, sys.stdin.buffer.read())
linker = w.Linker(engine); linker.allow_shadowing = True
linker.define_unknown_imports_as_traps(module)
vals = {"i32": w.Val.i32(666), "i64": w.Val.i64(666), "f32": w.Val.f32(666.6), "f64": w.Val.f64(666.6)}
for imp in module.imports:
    t = imp.type
    if imp.module != "spectest" or isinstance(t, w.FuncType):
        continue
    if isinstance(t, w.GlobalType) and str(t.content) in vals:
        item = w.Global(store, t, vals[str(t.content)])
    elif isinstance(t, w.MemoryType):
        item = w.Memory(store, w.MemoryType(w.Limits(1, 2)))
    elif isinstance(t, w.TableType):
        item = w.Table(store, w.TableType(w.ValType.funcref(), w.Limits(10, 20)), None)
    else:
        continue
    linker.define(store, "spectest", imp.name, item)
try:
    linker.instantiate(store, module)
except w.Trap as trap:
    print("fuel" if trap.trap_code == w.TrapCode.OUT_OF_FUEL else "trap")
except Exception:
    print("error")
else:
    print("ok")
"""


def wasmtime_hangs(data: bytes, fuel: int = WASMTIME_FUEL, timeout: float = 60.0) -> bool | None:
    """True when wasmtime also cannot instantiate ``data`` within ``fuel``; None if unknown."""
    try:
        proc = subprocess.run([sys.executable, "-c", _WASMTIME_PROBE, str(fuel)], input=data,
                              capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return True
    answer = proc.stdout.decode(errors="replace").strip()
    if proc.returncode != 0 or not answer:
        return None
    return answer == "fuel"


# --- Corpus -----------------------------------------------------------------------------------


@dataclass
class Seed:
    name: str
    data: bytes
    valid: bool  # a module command (wasm-tools mutate needs valid input), not assert_invalid etc.


def spec_seeds(spec_dir: Path = SPEC_DIR) -> list[Seed]:
    """The binary modules of the spec suite's scripts, SIMD scripts excluded."""
    from ..wast import convert

    seeds = []
    for wast in sorted(spec_dir.glob("*.wast")):
        if wast.name.startswith("simd"):
            continue
        seeds.extend(_wast_seeds(wast, convert))
    return seeds


def _wast_seeds(wast: Path, convert: Callable[[Path], Path]) -> list[Seed]:
    try:
        json_path = convert(wast)
    except Exception:  # noqa: BLE001 - a script wasm-tools cannot convert adds no seeds
        return []
    script = json.loads(json_path.read_text())
    seeds = []
    for cmd in script.get("commands", []):
        filename = cmd.get("filename")
        if not filename or not filename.endswith(".wasm") or cmd.get("module_type", "binary") != "binary":
            continue
        data = (json_path.parent / filename).read_bytes()
        if len(data) > MAX_INPUT:
            continue
        seeds.append(Seed(f"{wast.stem}:{cmd.get('line')}", data, cmd["type"] == "module"))
    return seeds


SMITH_FLAGS = ["--simd-enabled", "false", "--relaxed-simd-enabled", "false", "--gc-enabled", "false",
               "--exceptions-enabled", "false", "--tail-call-enabled", "false", "--threads-enabled", "false",
               "--memory64-enabled", "false", "--custom-page-sizes-enabled", "false",
               "--wide-arithmetic-enabled", "false", "--extended-const-enabled", "false",
               "--max-memories", "1", "--ensure-termination", "--max-memory32-bytes", str(1 << 24)]


def smith_seeds(count: int, rng: random.Random) -> list[Seed]:
    """``count`` modules from ``wasm-tools smith`` (some with over-long LEB128 encodings)."""
    from ..wat import wasm_tools

    seeds = []
    for i in range(count * 3):
        if len(seeds) >= count:
            break
        extra = ["--min-uleb-size", "5"] if i % 3 == 1 else []
        noise = rng.randbytes(rng.randrange(200, 4000))
        proc = subprocess.run([wasm_tools(), "smith", *SMITH_FLAGS, *extra], input=noise, capture_output=True)
        if proc.returncode == 0 and proc.stdout:
            seeds.append(Seed(f"smith:{i}", proc.stdout, True))
    return seeds


def file_seeds(paths: Sequence[str]) -> list[Seed]:
    """Seeds from .wasm files and from the binary modules of .wast scripts."""
    from ..wast import convert

    seeds = []
    for name in paths:
        path = Path(name)
        if path.suffix == ".wast":
            seeds.extend(_wast_seeds(path, convert))
        else:
            seeds.append(Seed(path.name, path.read_bytes(), True))
    return seeds


# --- Mutations ----------------------------------------------------------------------------------


INTERESTING_BYTES = (0x00, 0x01, 0x40, 0x60, 0x6F, 0x70, 0x7F, 0x80, 0xFF, 0x0B, 0x02, 0x03, 0x04, 0x05,
                     0x0C, 0x0D, 0x0E, 0x10, 0x11, 0x1C, 0xFC)
HUGE_LEBS = (b"\xff\xff\xff\xff\x0f", b"\x80\x80\x80\x80\x10", b"\xff\xff\xff\xff\x7f",
             b"\x80\x80\x80\x80\x80\x00",
             b"\xfe\xff\xff\xff\x0f", b"\x80\x80\x04", b"\x81\x80\x04", b"\x80\x80\x80\x80\x08",
             b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", b"\x80\x80\x80\x80\x00", b"\x7f")


def uleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_uleb(data: bytes, pos: int) -> tuple[int, int] | None:
    result = shift = 0
    while pos < len(data) and shift < 35:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, pos
    return None


def sections(data: bytes) -> list[tuple[int, int, int]]:
    """(id, content start, content end) of each well-framed section, for targeted mutation."""
    out = []
    pos = 8
    while pos < len(data):
        sid = data[pos]
        got = _read_uleb(data, pos + 1)
        if got is None:
            break
        size, start = got
        if start + size > len(data):
            break
        out.append((sid, start, start + size))
        pos = start + size
    return out


def code_bodies(data: bytes, start: int, end: int) -> list[tuple[int, int]]:
    """(body start, body end) of each function body of a code section's content."""
    got = _read_uleb(data, start)
    if got is None:
        return []
    count, pos = got
    out = []
    for _ in range(min(count, 100_000)):
        got = _read_uleb(data, pos)
        if got is None:
            break
        size, body = got
        if body + size > end:
            break
        out.append((body, body + size))
        pos = body + size
    return out


DAMAGE_OPS = ("flip", "byte", "special", "leb", "insert", "delete", "dup", "truncate", "splice", "zero")


def damage(buf: bytearray, rng: random.Random, donors: Sequence[bytes]) -> str:
    """Apply one random byte-level mutation to ``buf`` in place; its name."""
    n = len(buf)
    op = rng.choice(DAMAGE_OPS)
    pos = rng.randrange(n) if n else 0
    if op == "flip" and n:
        buf[pos] ^= 1 << rng.randrange(8)
    elif op == "byte" and n:
        buf[pos] = rng.randrange(256)
    elif op == "special" and n:
        buf[pos] = rng.choice(INTERESTING_BYTES)
    elif op == "leb":
        length = _read_uleb(bytes(buf), pos)
        end = length[1] if length is not None and rng.random() < 0.7 else pos + rng.randrange(1, 3)
        buf[pos:end] = rng.choice(HUGE_LEBS)
    elif op == "insert":
        buf[pos:pos] = rng.randbytes(rng.randrange(1, 9)) if rng.random() < 0.5 else bytes(
            [rng.choice(INTERESTING_BYTES)] * rng.randrange(1, 64))
    elif op == "delete" and n:
        del buf[pos : pos + rng.randrange(1, 17)]
    elif op == "dup" and n:
        chunk = buf[pos : pos + rng.randrange(1, 65)]
        buf[pos:pos] = chunk * rng.randrange(1, 9)
    elif op == "truncate" and n:
        del buf[pos:]
    elif op == "splice" and donors:
        donor = rng.choice(donors)
        if donor:
            a = rng.randrange(len(donor))
            buf[pos : pos + rng.randrange(0, 33)] = donor[a : a + rng.randrange(1, 65)]
    elif op == "zero" and n:
        buf[pos : pos + rng.randrange(1, 17)] = bytes(min(16, n - pos))
    return op


def damage_module(data: bytes, rng: random.Random, donors: Sequence[bytes]) -> tuple[bytes, str]:
    """1-4 byte-level mutations: anywhere, or inside one section or function body with the
    section's (and body's) size fields rewritten to match."""
    steps = rng.randrange(1, 5)
    secs = sections(data)
    where = rng.random()
    if where < 0.25 or not secs:
        buf = bytearray(data)
        ops = [damage(buf, rng, donors) for _ in range(steps)]
        return bytes(buf), "bytes:" + ",".join(ops)
    index = rng.randrange(len(secs))
    sid, start, end = secs[index]
    bodies = code_bodies(data, start, end) if sid == 10 else []
    if bodies and where < 0.75:  # inside one function body
        b_start, b_end = rng.choice(bodies)
        body = bytearray(data[b_start:b_end])
        ops = [damage(body, rng, donors) for _ in range(steps)]
        size_pos = b_start - 1
        while size_pos > start and data[size_pos - 1] & 0x80:  # back to the body's size field
            size_pos -= 1
        content = data[start:size_pos] + uleb(len(body)) + bytes(body) + data[b_end:end]
        label = f"body:{','.join(ops)}"
    else:
        body = bytearray(data[start:end])
        ops = [damage(body, rng, donors) for _ in range(steps)]
        content = bytes(body)
        label = f"section{sid}:{','.join(ops)}"
    header_pos = _section_header(data, index)
    out = data[:header_pos] + bytes([sid]) + uleb(len(content)) + content + data[end:]
    return out, label


def _section_header(data: bytes, index: int) -> int:
    pos = 8
    for _ in range(index):
        got = _read_uleb(data, pos + 1)
        assert got is not None
        size, start = got
        pos = start + size
    return pos


class Generator:
    """Produces mutated inputs from the seeds; safe to call from several threads (the wasm-tools
    subprocesses run outside the GIL)."""

    def __init__(self, seeds: list[Seed], seed: int) -> None:
        from ..wat import wasm_tools

        self.wasm_tools = wasm_tools()
        self.seeds = seeds
        self.valid = [s for s in seeds if s.valid] or seeds
        self.donors = [s.data for s in seeds]
        self.seed = seed
        self.lock = threading.Lock()
        self.counter = 0
        self.mutate_failures = 0

    def _wasm_mutate(self, data: bytes, rng: random.Random) -> bytes | None:
        cmd = [self.wasm_tools, "mutate", "--seed", str(rng.getrandbits(63)), "--fuel", "10000"]
        if rng.random() < 0.3:
            cmd.append("--preserve-semantics")
        try:
            proc = subprocess.run(cmd, input=data, capture_output=True, timeout=30)
        except subprocess.TimeoutExpired:
            return None
        if proc.returncode != 0 or not proc.stdout or len(proc.stdout) > MAX_INPUT:
            return None
        return proc.stdout

    def next(self) -> tuple[bytes, str]:
        """One input and the recipe that made it."""
        with self.lock:
            n = self.counter
            self.counter += 1
        rng = random.Random(f"{self.seed}:{n}")
        choice = rng.random()
        if choice < 0.55:  # wasm-tools mutate, 1-3 times in a row, sometimes damaged after
            seed = self.valid[n % len(self.valid)] if rng.random() < 0.7 else rng.choice(self.valid)
            data = seed.data
            steps = rng.choice((1, 1, 1, 2, 3))
            done = 0
            for _ in range(steps):
                mutant = self._wasm_mutate(data, rng)
                if mutant is None:
                    with self.lock:
                        self.mutate_failures += 1
                    continue
                data, done = mutant, done + 1
            recipe = f"{seed.name} wasm-mutate x{done}"
            if done == 0 or rng.random() < 0.2:
                data, label = damage_module(data, rng, self.donors)
                recipe += f" + {label}"
            return data, recipe
        seed = self.seeds[n % len(self.seeds)] if rng.random() < 0.7 else rng.choice(self.seeds)
        data, label = damage_module(seed.data, rng, self.donors)
        return data, f"{seed.name} {label}"


# --- Findings -----------------------------------------------------------------------------------


@dataclass
class Finding:
    kind: str  # exception | crash | timeout
    exc_type: str
    message: str
    frame: str
    recipe: str
    path: Path | None = None
    shrunk: Path | None = None
    duplicates: int = 0
    traceback: str = ""

    @property
    def signature(self) -> tuple[str, str, str]:
        return self.kind, self.exc_type, self.frame

    def describe(self) -> str:
        what = {"exception": f"{self.exc_type}: {self.message} at {self.frame}",
                "crash": f"worker crashed ({self.exc_type})",
                "timeout": "no answer within the timeout"}[self.kind]
        return f"{self.kind}: {what} [input: {self.recipe}]"


def predicate_matches(result: dict[str, Any], kind: str, exc_type: str) -> bool:
    """Does a re-run's ``result`` reproduce a finding of this kind and exception type?"""
    if kind == "exception":
        return result.get("outcome") == "exception" and result.get("type") == exc_type
    return result.get("outcome") == kind


def repro_command(path: Path, tier: str | None = None) -> str:
    prefix = f"WASMJIT_TIER={tier} " if tier else ""
    return f"{prefix}{Path(sys.executable).name} -m wasmjit.fuzz.mutate --repro {path}"


def run_isolated(data: bytes, timeout: float, tier: str | None = None) -> dict[str, Any]:
    """``check(data)`` in a fresh worker process."""
    worker = Worker(timeout, tier=tier)
    try:
        return worker.run(data)
    finally:
        worker.stop()


def _is_valid_wasm(data: bytes) -> bool:
    from ..wat import wasm_tools

    proc = subprocess.run([wasm_tools(), "validate", "-"], input=data, capture_output=True)
    return proc.returncode == 0


def shrink_with_wasm_tools(path: Path, kind: str, exc_type: str, timeout: float, attempts: int,
                           budget: float, tier: str | None = None) -> Path | None:
    """``wasm-tools shrink`` with a predicate script re-running the input in a fresh process."""
    from ..wat import wasm_tools

    out = path.with_suffix(".shrunk.wasm")
    with tempfile.TemporaryDirectory(prefix="wasmjit-shrink-") as tmp:
        script = Path(tmp) / "predicate.sh"
        root = str(Path(__file__).resolve().parents[2])
        script.write_text("#!/bin/sh\n"
                          f"PYTHONPATH={_sh(root)} exec {_sh(sys.executable)} -m wasmjit.fuzz.mutate "
                          f"--predicate {_sh(kind)} {_sh(exc_type)} --timeout {timeout} "
                          + (f"--tier {_sh(tier)} " if tier else "") + "\"$1\"\n")
        script.chmod(0o755)
        try:
            proc = subprocess.run([wasm_tools(), "shrink", "--attempts", str(attempts), str(script),
                                   str(path), "-o", str(out)], capture_output=True, timeout=budget)
        except subprocess.TimeoutExpired:
            return None
    if proc.returncode != 0 or not out.exists():
        return None
    return out


def _sh(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def shrink_bytes(data: bytes, still_fails: Callable[[bytes], bool], budget: float) -> bytes:
    """Delta debugging over bytes: drop chunks (halving their size) while the finding stays."""
    deadline = time.monotonic() + budget
    chunk = max(1, len(data) // 2)
    while chunk >= 1 and time.monotonic() < deadline:
        pos = 8 if len(data) > 8 else 0  # keep the preamble while it is there
        changed = False
        while pos < len(data) and time.monotonic() < deadline:
            candidate = data[:pos] + data[pos + chunk :]
            if candidate != data and still_fails(candidate):
                data, changed = candidate, True
            else:
                pos += chunk
        if not changed:
            chunk //= 2
    return data


class Findings:
    """Writes findings to ``out``; one file per distinct (kind, type, frame) signature."""

    def __init__(self, out: Path, shrink: bool, timeout: float, attempts: int, log: Callable[[str], None],
                 worker_command: Sequence[str] | None = None, tier: str | None = None) -> None:
        self.worker_command = worker_command
        self.tier = tier
        self.out = out
        self.shrink = shrink
        self.timeout = timeout
        self.attempts = attempts
        self.log = log
        self.by_signature: dict[tuple[str, str, str], Finding] = {}
        self.total = 0
        self.lock = threading.Lock()

    def add(self, finding: Finding, data: bytes) -> bool:
        """Record ``finding``; True when its signature is new (then it is written and shrunk)."""
        with self.lock:
            self.total += 1
            known = self.by_signature.get(finding.signature)
            if known is not None:
                known.duplicates += 1
                return False
            self.by_signature[finding.signature] = finding
        self.out.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha1(data).hexdigest()[:12]
        path = self.out / f"{finding.kind}-{digest}.wasm"
        path.write_bytes(data)
        finding.path = path
        path.with_suffix(".txt").write_text(finding.describe() + "\n")
        if finding.traceback:
            path.with_suffix(".traceback").write_text(finding.traceback)
        if self.shrink:
            finding.shrunk = self._shrink(finding, path, data)
        self.log(f"FINDING {finding.describe()}\n  input: {path}"
                 + (f"\n  shrunk: {finding.shrunk} ({finding.shrunk.stat().st_size} bytes)"
                    if finding.shrunk else "")
                 + f"\n  reproduce: {repro_command(finding.shrunk or path, self.tier)}")
        return True

    def _shrink(self, finding: Finding, path: Path, data: bytes) -> Path | None:
        budget = 4 * self.timeout if finding.kind == "timeout" else 120.0
        shrunk = None
        if finding.kind != "timeout" and self.worker_command is None and _is_valid_wasm(data):
            shrunk = shrink_with_wasm_tools(path, finding.kind, finding.exc_type, self.timeout,
                                            self.attempts, budget, self.tier)
        if shrunk is not None or finding.kind == "timeout":
            return shrunk
        worker = Worker(self.timeout, self.worker_command, self.tier)
        try:
            small = shrink_bytes(data, lambda d: predicate_matches(worker.run(d), finding.kind,
                                                                   finding.exc_type), budget)
        finally:
            worker.stop()
        if len(small) >= len(data):
            return None
        out = path.with_suffix(".shrunk.wasm")
        out.write_bytes(small)
        return out


# --- The campaign ---------------------------------------------------------------------------


@dataclass
class Stats:
    inputs: int = 0
    outcomes: Counter = field(default_factory=Counter)
    # a few distinct messages of the rarer outcomes, to see what they are
    examples: dict[str, Counter] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def line(self, findings: Findings) -> str:
        elapsed = max(1e-9, time.monotonic() - self.started)
        counts = " ".join(f"{k}={self.outcomes[k]}" for k in OUTCOMES)
        return (f"[{elapsed:7.1f}s] {self.inputs} inputs ({self.inputs / elapsed:.1f}/s) {counts} "
                f"findings={findings.total} ({len(findings.by_signature)} distinct)")


def _arg(args: argparse.Namespace, name: str, default: Any) -> Any:
    value = getattr(args, name, None)
    return default if value is None else value


def load_corpus(args: argparse.Namespace, rng: random.Random) -> list[Seed]:
    corpus = _arg(args, "corpus", None)
    if corpus:
        return file_seeds(corpus)
    return spec_seeds() + smith_seeds(int(_arg(args, "smith_seeds", 12)), rng)


def run(args: argparse.Namespace) -> int:
    """Fuzz until ``args.seconds`` pass or ``args.count`` inputs are done; 1 if anything was
    found, else 0. ``args`` may be the ``wasmjit fuzz`` namespace (``max_modules`` is then the
    count) or this module's own (see :func:`build_parser`)."""
    seconds = float(_arg(args, "seconds", 60.0))
    seed = int(_arg(args, "seed", 0))
    count = _arg(args, "count", None)
    if count is None:
        count = getattr(args, "max_modules", None)
    out = Path(_arg(args, "out", "fuzz-crashes"))
    timeout = float(_arg(args, "timeout", DEFAULT_TIMEOUT))
    workers = max(1, int(_arg(args, "workers", WORKERS)))
    shrink = not getattr(args, "no_shrink", False)
    attempts = int(_arg(args, "shrink_attempts", 200))
    quiet = bool(getattr(args, "quiet", False))
    every = float(_arg(args, "progress", 5.0))
    tier = getattr(args, "tier", None)
    tiers = getattr(args, "tiers", None)  # `wasmjit fuzz --mutate --tiers jit`: one tier only
    if tier is None and tiers and "," not in tiers and tiers != "wasmtime":
        tier = tiers

    def log(text: str) -> None:
        print(text, file=sys.stderr if quiet else sys.stdout, flush=True)

    rng = random.Random(seed)
    seeds = [s for s in load_corpus(args, rng) if s.data]
    if not seeds:
        log("error: the corpus is empty")
        return 2
    log(f"mutate: {len(seeds)} seeds ({sum(s.valid for s in seeds)} valid modules), "
        f"{workers} workers, timeout {timeout:g}s, seed {seed}, tier {tier or 'default'}")
    gen = Generator(seeds, seed)
    inject = getattr(args, "inject", None)  # tests: extra inputs tried first
    stats = Stats()
    worker_command = getattr(args, "worker_command", None)
    findings = Findings(out, shrink, timeout, attempts, log, worker_command, tier)
    deadline = stats.started + seconds
    lock = threading.Lock()
    stop = threading.Event()
    last_line = [time.monotonic()]
    pending: queue.SimpleQueue[tuple[bytes, str]] = queue.SimpleQueue()
    for item in inject or ():
        pending.put(item)

    def take() -> tuple[bytes, str] | None:
        with lock:
            if stop.is_set() or time.monotonic() >= deadline or (count is not None and stats.inputs >= count):
                stop.set()
                return None
            stats.inputs += 1
        try:
            return pending.get_nowait()
        except queue.Empty:
            return gen.next()

    def loop() -> None:
        worker = Worker(timeout, worker_command, tier)
        try:
            while (item := take()) is not None:
                data, recipe = item
                result = worker.run(data)
                outcome = result.get("outcome")
                if outcome == "timeout" and result.get("start") and wasmtime_hangs(data):
                    outcome = "hang"  # the start function runs (nearly) forever in wasmtime too
                if outcome in FINDING_KINDS:
                    findings.add(Finding(outcome, result.get("type", outcome), result.get("message", ""),
                                         result.get("frame", ""), recipe,
                                         traceback=result.get("traceback", "")), data)
                with lock:
                    stats.outcomes[outcome] += 1
                    if outcome in ("limit", "unsupported", "hang", "trap"):
                        seen = stats.examples.setdefault(outcome, Counter())
                        message = result.get("message", "")[:120]
                        if message in seen or len(seen) < 8:
                            seen[message] += 1
                    if time.monotonic() - last_line[0] >= every:
                        last_line[0] = time.monotonic()
                        log(stats.line(findings))
        finally:
            worker.stop()

    threads = [threading.Thread(target=loop, name=f"mutate-{i}", daemon=True) for i in range(workers)]
    for t in threads:
        t.start()
    try:
        for t in threads:
            t.join()
    except KeyboardInterrupt:
        stop.set()
        for t in threads:
            t.join()
    log(stats.line(findings))
    for outcome, seen in stats.examples.items():
        for message, n in seen.most_common(4):
            log(f"  {outcome} x{n}: {message}")
    if gen.mutate_failures:
        log(f"({gen.mutate_failures} wasm-tools mutate attempts failed and were retried or replaced)")
    for finding in findings.by_signature.values():
        reproducer = repro_command(finding.shrunk or finding.path, tier)  # type: ignore[arg-type]
        log(f"  {finding.describe()} x{finding.duplicates + 1}: {reproducer}")
    args.stats = stats  # for callers (tests) that want the numbers
    args.findings = list(findings.by_signature.values())
    return 1 if findings.total else 0


# --- Command line ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m wasmjit.fuzz.mutate",
                                     description="Mutation fuzzing of wasmjit's decoder, validator and "
                                                 "instantiation (findings: non-WasmjitError exceptions, "
                                                 "crashes, hangs).")
    parser.add_argument("--seconds", type=float, default=float("inf"), help="time budget (default: none)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--count", type=int, default=None, help="stop after N inputs (default: unlimited)")
    parser.add_argument("--out", default="fuzz-crashes", help="findings directory (default fuzz-crashes)")
    parser.add_argument("--corpus", nargs="+", metavar="FILE",
                        help=".wasm/.wast seeds (default: the spec suite plus wasm-tools smith modules)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help="seconds per input (default 10)")
    parser.add_argument("--tier", choices=("interp", "jit", "tiered"), default=None,
                        help="the engine's tier in the workers (default: tiered; jit compiles every "
                             "function at instantiation)")
    parser.add_argument("--workers", type=int, default=WORKERS, help="worker processes (default 2)")
    parser.add_argument("--no-shrink", action="store_true", help="write findings unshrunk")
    parser.add_argument("--shrink-attempts", type=int, default=200, help="wasm-tools shrink --attempts")
    parser.add_argument("--progress", type=float, default=5.0, help="seconds between progress lines")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--repro", metavar="FILE", help="run one input in this process and show the outcome")
    parser.add_argument("--predicate", nargs=2, metavar=("KIND", "TYPE"),
                        help="exit 0 iff FILE (last argument) reproduces a finding (for wasm-tools shrink)")
    parser.add_argument("file", nargs="?", help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.worker:
        return worker_main()
    if args.predicate:
        if not args.file:
            return 2
        result = run_isolated(Path(args.file).read_bytes(), args.timeout, args.tier)
        return 0 if predicate_matches(result, *args.predicate) else 1
    if args.repro:
        result = check(Path(args.repro).read_bytes())
        tb = result.pop("traceback", None)
        if tb:
            print(tb, end="")
        print(json.dumps(result))
        return 1 if result["outcome"] == "exception" else 0
    if args.seconds == float("inf") and args.count is None:
        args.seconds = 60.0
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
