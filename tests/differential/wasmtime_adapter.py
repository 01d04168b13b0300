"""A throwaway EngineAdapter backed by wasmtime-py, to exercise the spec runner without wasmjit.

Never imported by wasmjit itself. wasmtime's errors carry no class that says malformed vs
invalid, so a failed compile is classified by asking ``wasm-tools`` whether the file parses
(text) or prints (binary, which parses without validating). f32 values go through struct, so
signalling NaN payloads are not bit-exact here.

Run: ``python tests/differential/wasmtime_adapter.py [--verbose] FILE.wast...``
"""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import wasmtime

from wasmjit import wast
from wasmjit.errors import TrapCode

LINK_MESSAGES = ("unknown import", "incompatible import type", "types incompatible")


class _LoadError(Exception):
    """A module wasmtime refused, already classified as malformed or invalid."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _parses(path: Path, text: bool) -> bool:
    """Whether wasm-tools accepts the file syntactically (no validation)."""
    command = "parse" if text else "print"
    proc = subprocess.run([wast.wasm_tools(), command, str(path), "-o", "/dev/null"], capture_output=True)
    return proc.returncode == 0


def _trap_reason(trap: wasmtime.Trap) -> str:
    code = trap.trap_code
    if code is not None and code.name in TrapCode.__members__ and code.name != "TABLE_OUT_OF_BOUNDS":
        return TrapCode[code.name].value
    message = str(trap)
    marker = "wasm trap: "
    return message[message.index(marker) + len(marker):].splitlines()[0] if marker in message else message


class WasmtimeAdapter(wast.EngineAdapter):
    """Drives wasmtime-py, which has the API shape wasmjit copies."""

    name = "wasmtime"

    @property
    def api(self) -> Any:
        return wasmtime

    def make_engine(self) -> Any:
        return wasmtime.Engine()

    def load(self, path: Path, text: bool) -> Any:
        try:
            if text:
                return wasmtime.Module(self.engine, path.read_text(encoding="utf-8", errors="replace"))
            return wasmtime.Module.from_file(self.engine, str(path))
        except wasmtime.WasmtimeError as err:
            kind = wast.INVALID if _parses(path, text) else wast.MALFORMED
            raise _LoadError(kind, str(err)) from None

    def classify(self, exc: Exception) -> wast.EngineError:
        if isinstance(exc, _LoadError):
            return wast.EngineError(exc.kind, wast.one_line(str(exc)))
        if isinstance(exc, wasmtime.Trap):
            code = exc.trap_code
            return wast.EngineError(wast.TRAP, _trap_reason(exc),
                                    code is not None and code.name == "STACK_OVERFLOW")
        if isinstance(exc, wasmtime.WasmtimeError):
            kind = wast.UNLINKABLE if any(m in str(exc) for m in LINK_MESSAGES) else wast.OTHER
            return wast.EngineError(kind, wast.one_line(str(exc)))
        return super().classify(exc)

    def f32_from_bits(self, bits: int) -> float:
        return struct.unpack("<f", struct.pack("<I", bits))[0]

    def f32_to_bits(self, value: float) -> int:
        return struct.unpack("<I", struct.pack("<f", value))[0]

    def f64_from_bits(self, bits: int) -> float:
        return struct.unpack("<d", struct.pack("<Q", bits))[0]

    def f64_to_bits(self, value: float) -> int:
        return struct.unpack("<Q", struct.pack("<d", value))[0]


if __name__ == "__main__":
    sys.exit(wast.main(sys.argv[1:], adapter_factory=WasmtimeAdapter))
