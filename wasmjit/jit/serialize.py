"""``Module.serialize``'s format: a module's wasm bytes and its functions' relocatable native code
(:mod:`.artifact`), so that a later run loads the code instead of compiling it.

Layout (integers little-endian; ``str`` is a u16 length and UTF-8, ``bytes`` a u32 length)::

    magic        8 bytes  b"\\0wasmjit" (neither a wasm binary nor text)
    format       u16      FORMAT_VERSION
    fingerprint           everything generated code depends on besides the module, which must
                          equal the loading engine's (:class:`Fingerprint`):
      version    str      wasmjit's version
      code       str      "x86-64" (tiers jit, tiered, unicorn) or "none" (interp)
      flags      u8       1: Config.consume_fuel, 2: Config.epoch_interruption
      fault      str      codegen.INJECTED_FAULT or ""
      source     32 bytes SHA-256 of the sources between wasm and machine code (SOURCES)
    digest       32 bytes SHA-256 of the body
    length       u64      the body's length
    body:
      wasm       bytes    the module (decoded and validated again on load)
      targets    u32 n, then n values: the distinct relocation targets
      count      u32      functions with code, then per function:
        index    u32      function index (a defined function)
        entry    u32      offset of its entry
        code     bytes    machine code and data, assembled at offset 0
        relocs   u32 n, then n x (offset u32, width u8, target number u32)
        sites    3 x (u32 n, then n x (code offset u32, wasm offset u32)): traps, calls, marks

A value is tagged: 0 None, 1 int (i64), 2 str, 3 tuple (u8 count, then the items); a target is a
tuple starting with its kind (``codegen.TARGETS``). The digest catches corrupted and truncated
data; everything is bounds- and range-checked anyway, so bad input raises :class:`WasmjitError`
and nothing else. The code itself is trusted: as with
wasmtime, deserialize only what a trusted serialize produced. Imports: errors, validate,
jit.artifact, jit.codegen (jit.native, which needs the assembler, only to compile).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import WasmjitError
from ..validate import ValidatedModule
from . import codegen
from .artifact import CodeKey, FunctionCode, Relocation, Target, module_cache
from .lower import HELPERS

MAGIC = b"\0wasmjit"
FORMAT_VERSION = 1
NATIVE_CODE = "x86-64"
NO_CODE = "none"
_FUEL, _EPOCH = 1, 2
_PACKAGE = Path(__file__).resolve().parents[1]
# What turns wasm into machine code, and the layouts that code reads (relative to wasmjit/).
SOURCES = ("jit/**/*.py", "runtime/*.py", "validate/*.py", "decode/*.py", "opcodes.py", "structure.py",
           "errors.py")
_MAX_DEPTH = 3  # of nested tuples in a relocation target: ("helper", name, (a, b))
_RELOC = struct.Struct("<IBI")  # offset, width, target number


@dataclass(frozen=True)
class Fingerprint:
    """What generated code depends on besides the module: a serialized module loads only into an
    engine whose fingerprint is equal."""

    version: str
    code: str  # NATIVE_CODE or NO_CODE
    consume_fuel: bool
    epoch_interruption: bool
    fault: str  # the injected code generation fault (codegen.INJECTED_FAULT), or ""
    source: bytes

    @property
    def key(self) -> CodeKey:
        """The module code cache's key for code of this fingerprint."""
        return (self.consume_fuel, self.epoch_interruption, self.fault or None)


def fingerprint(native: bool, consume_fuel: bool, epoch_interruption: bool) -> Fingerprint:
    """This build's fingerprint for an engine with these settings (``native``: its tier runs
    native code)."""
    return Fingerprint(_version(), NATIVE_CODE if native else NO_CODE, consume_fuel, epoch_interruption,
                       codegen.INJECTED_FAULT or "", _source_hash())


@functools.cache
def _version() -> str:
    try:
        return importlib.metadata.version("wasmjit")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree: the source hash decides
        return "source"


@functools.cache
def _source_hash() -> bytes:
    digest = hashlib.sha256()
    for path in sorted({p for pattern in SOURCES for p in _PACKAGE.glob(pattern)}):
        digest.update(path.relative_to(_PACKAGE).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return digest.digest()


# --- writing -------------------------------------------------------------------------------------


class _Writer:
    def __init__(self) -> None:
        self.out = bytearray()

    def int(self, fmt: str, value: int) -> None:
        self.out += struct.pack("<" + fmt, value)

    def bytes(self, data: bytes) -> None:
        self.int("I", len(data))
        self.out += data

    def str(self, text: str) -> None:
        data = text.encode()
        self.int("H", len(data))
        self.out += data

    def value(self, value: Any) -> None:
        if value is None:
            self.int("B", 0)
        elif isinstance(value, int):
            self.int("B", 1)
            self.int("q", value)
        elif isinstance(value, str):
            self.int("B", 2)
            self.str(value)
        else:
            self.int("B", 3)
            self.int("B", len(value))
            for item in value:
                self.value(item)

    def sites(self, pairs: tuple[tuple[int, int], ...]) -> None:
        self.int("I", len(pairs))
        self.out += struct.pack(f"<{2 * len(pairs)}I", *(n for pair in pairs for n in pair))


def serialize(fp: Fingerprint, binary: bytes, funcs: Mapping[int, FunctionCode]) -> bytearray:
    """The serialized module: ``binary`` and the code of ``funcs`` (function index -> code)."""
    body = _Writer()
    body.bytes(binary)
    targets = {r.target: 0 for code in funcs.values() for r in code.relocations}
    body.int("I", len(targets))
    for number, target in enumerate(targets):
        targets[target] = number
        body.value(target)
    body.int("I", len(funcs))
    for index in sorted(funcs):
        code = funcs[index]
        body.int("I", index)
        body.int("I", code.entry)
        body.bytes(code.code)
        body.int("I", len(code.relocations))
        for offset, width, target in code.relocations:
            body.out += _RELOC.pack(offset, width, targets[target])
        for sites in (code.trap_sites, code.call_sites, code.wasm_marks):
            body.sites(sites)
    out = _Writer()
    out.out += MAGIC
    out.int("H", FORMAT_VERSION)
    out.str(fp.version)
    out.str(fp.code)
    out.int("B", (_FUEL if fp.consume_fuel else 0) | (_EPOCH if fp.epoch_interruption else 0))
    out.str(fp.fault)
    out.out += fp.source
    out.out += hashlib.sha256(body.out).digest()
    out.int("Q", len(body.out))
    return out.out + body.out


# --- reading -------------------------------------------------------------------------------------


def _malformed(why: str) -> WasmjitError:
    return WasmjitError(f"failed to deserialize module: {why}")


class _Reader:
    """Reads what :class:`_Writer` wrote; running past the end is a WasmjitError."""

    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data = data
        self.pos = pos

    def take(self, n: int) -> bytes:
        if n > len(self.data) - self.pos:
            raise _malformed("the data is truncated")
        self.pos += n
        return self.data[self.pos - n:self.pos]

    def int(self, fmt: str) -> int:
        size = struct.calcsize("<" + fmt)
        return struct.unpack("<" + fmt, self.take(size))[0]

    def bytes(self) -> bytes:
        return self.take(self.int("I"))

    def str(self) -> str:
        try:
            return self.take(self.int("H")).decode()
        except UnicodeDecodeError:
            raise _malformed("a name is not UTF-8") from None

    def value(self, depth: int = 0) -> Any:
        tag = self.int("B")
        if tag == 0:
            return None
        if tag == 1:
            return self.int("q")
        if tag == 2:
            return self.str()
        if tag == 3 and depth < _MAX_DEPTH:
            return tuple(self.value(depth + 1) for _ in range(self.int("B")))
        raise _malformed(f"bad relocation target (tag {tag})")

    def sites(self, size: int) -> tuple[tuple[int, int], ...]:
        n = self.count(8)
        flat = struct.unpack(f"<{2 * n}I", self.take(8 * n))
        if n and max(flat[0::2]) > size:
            raise _malformed("a code offset is past the end of its function")
        return tuple(zip(flat[0::2], flat[1::2], strict=True))

    def count(self, item_size: int) -> int:
        """A u32 count of items of at least ``item_size`` bytes, checked against what is left."""
        n = self.int("I")
        if n * item_size > len(self.data) - self.pos:
            raise _malformed("the data is truncated")
        return n


def deserialize(data: bytes, expected: Fingerprint) -> tuple[bytes, dict[int, FunctionCode]]:
    """The wasm bytes and function code of a serialized module, which must have been made for an
    engine with the ``expected`` fingerprint."""
    data = bytes(data)
    if data[:len(MAGIC)] != MAGIC:
        raise _malformed("not a serialized wasmjit module (no \\0wasmjit header)")
    r = _Reader(data, len(MAGIC))
    version = r.int("H")
    if version != FORMAT_VERSION:
        raise _malformed(f"the data has format version {version}, this wasmjit reads version "
                         f"{FORMAT_VERSION}")
    wasmjit_version, code = r.str(), r.str()
    flags = r.int("B")
    if flags & ~(_FUEL | _EPOCH):
        raise _malformed(f"unknown settings flags {flags:#x}")
    fp = Fingerprint(wasmjit_version, code, bool(flags & _FUEL), bool(flags & _EPOCH), r.str(), r.take(32))
    _check_fingerprint(fp, expected)
    digest, length = r.take(32), r.int("Q")
    if length != len(r.data) - r.pos:
        raise _malformed("the data is truncated" if length > len(r.data) - r.pos else "trailing bytes")
    if hashlib.sha256(r.data[r.pos:]).digest() != digest:
        raise _malformed("the data is corrupted (checksum mismatch)")
    binary = r.bytes()
    targets = [_target(r.value()) for _ in range(r.count(1))]
    funcs: dict[int, FunctionCode] = {}
    for _ in range(r.count(4)):
        index = r.int("I")
        if index in funcs:
            raise _malformed(f"function {index} appears twice")
        funcs[index] = _read_function(r, targets)
    if r.pos != len(r.data):
        raise _malformed("trailing bytes")
    if fp.code == NO_CODE and funcs:
        raise _malformed("native code in a module serialized without it")
    return binary, funcs


def _target(value: Any) -> Target:
    if not isinstance(value, tuple) or not value or value[0] not in codegen.TARGETS:
        raise _malformed(f"unknown relocation target {value!r}")
    return value


def _read_function(r: _Reader, targets: list[Target]) -> FunctionCode:
    entry = r.int("I")
    code = r.bytes()
    relocations = []
    for offset, width, number in _RELOC.iter_unpack(r.take(_RELOC.size * r.count(_RELOC.size))):
        if width not in (4, 8) or offset + width > len(code) or number >= len(targets):
            raise _malformed(f"bad relocation ({width} bytes at {offset} in {len(code)}, target {number})")
        relocations.append(Relocation(offset, width, targets[number]))
    if entry >= len(code):
        raise _malformed("a function's entry is past its end")
    traps, calls, marks = (r.sites(len(code)) for _ in range(3))
    return FunctionCode(code, entry, tuple(relocations), traps, calls, marks)


def _check_fingerprint(got: Fingerprint, expected: Fingerprint) -> None:
    """Raise unless a module serialized with ``got`` may load where ``expected`` holds."""
    if got.version != expected.version:
        raise WasmjitError(f"Module was compiled by wasmjit {got.version}, this is wasmjit "
                           f"{expected.version}")
    if got.code != expected.code:
        tiers = {NATIVE_CODE: "native code (tier jit, tiered or unicorn)", NO_CODE: "no code (tier interp)"}
        raise WasmjitError(f"Module was compiled with {tiers.get(got.code, repr(got.code))} but the "
                           f"engine's tier runs {tiers[expected.code]}")
    for what, was, now in (("fuel support", got.consume_fuel, expected.consume_fuel),
                           ("epoch interruption", got.epoch_interruption, expected.epoch_interruption)):
        if was != now:
            raise WasmjitError(f"Module was compiled {'with' if was else 'without'} {what} but it is "
                               f"{'not ' if was else ''}enabled for the host")
    if got.fault != expected.fault:
        raise WasmjitError(f"Module was compiled with injected code generation fault "
                           f"{got.fault or 'none'!r}, the host has {expected.fault or 'none'!r}")
    if got.source != expected.source:
        raise WasmjitError(f"Module was compiled by another build of wasmjit's code generator (source "
                           f"hash {got.source.hex()[:12]}, this build {expected.source.hex()[:12]})")


# --- checking the code against its module -------------------------------------------------------

# A target's arguments: what each must index (function, global, type) or be.
_ARGUMENTS = {
    "func_code": ("func",), "func_vmctx": ("func",), "func_handle": ("func",), "code_array": (),
    "vmctx_array": (), "type_array": (), "global": ("global",), "type_id": ("type",), "trap_routine": (),
    "helper_routine": (), "helper": ("name", "imm"),
}


def attach(vmod: ValidatedModule, fp: Fingerprint, funcs: Mapping[int, FunctionCode]) -> None:
    """Make deserialized ``funcs`` the code of ``vmod``'s functions for engines like ``fp``, after
    checking that they refer only to what ``vmod`` has."""
    check_functions(vmod, funcs)
    module_cache(vmod, fp.key).update(funcs)


def module_code(vmod: ValidatedModule, fp: Fingerprint, required: bool) -> dict[int, FunctionCode]:
    """The code of every function of ``vmod`` for engines like ``fp``, compiling (and keeping) what
    no instantiation compiled yet; a function the JIT cannot compile raises if ``required`` (tiers
    that run only native code), else it is left out (it will be interpreted, as without the cache)."""
    cache = module_cache(vmod, fp.key)
    if fp.code == NATIVE_CODE:
        from .native import compile_code  # the assembler, only when something is left to compile

        for info in vmod.func_infos:
            if info.index not in cache:
                try:
                    cache[info.index] = compile_code(vmod, info, fp.consume_fuel, fp.epoch_interruption)
                except Exception:  # noqa: BLE001 - as tier-up: the function stays in the interpreter
                    if required:
                        raise
    return dict(cache) if fp.code == NATIVE_CODE else {}


def check_functions(vmod: ValidatedModule, funcs: Mapping[int, FunctionCode]) -> None:
    """Raise unless every function and relocation target refers to something ``vmod`` has."""
    module = vmod.module
    first = vmod.num_imported_funcs
    sizes = {"func": first + len(vmod.func_infos), "global": len(module.global_types()),
             "type": len(module.types)}
    for index in funcs:
        if not first <= index < sizes["func"]:
            raise _malformed(f"code for function {index}, which the module does not define")
    for target in {r.target for code in funcs.values() for r in code.relocations}:
        if not _target_fits(target, sizes):
            raise _malformed(f"relocation target {target!r} does not fit the module")


def _target_fits(target: Target, sizes: dict[str, int]) -> bool:
    kinds = _ARGUMENTS[target[0]]
    args = target[1:]
    if len(args) != len(kinds):
        return False
    for kind, arg in zip(kinds, args, strict=True):
        if kind in sizes:
            ok = isinstance(arg, int) and 0 <= arg < sizes[kind]
        elif kind == "name":
            ok = arg in HELPERS
        else:  # a helper's immediate: None, an index, or a tuple of indices
            items = arg if isinstance(arg, tuple) else (arg,)
            ok = all(item is None or (isinstance(item, int) and item >= 0) for item in items)
        if not ok:
            return False
    return True
