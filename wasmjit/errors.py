"""Every error wasmjit raises: decode, validation, link, trap and usage errors. Imports: demangle.

All of them derive from :class:`WasmjitError`, so an embedder can catch one class for any bad
input. A wasm trap is a :class:`Trap` carrying a :class:`TrapCode`, the spec's short message
and a wasm backtrace; ``str(trap)`` uses wasmtime's format (demangled function names included).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .demangle import demangle


class WasmjitError(Exception):
    """Base class of every error wasmjit raises on bad input or failed execution."""


class DecodeError(WasmjitError):
    """The binary is malformed; ``offset`` is the byte offset where decoding failed."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        self.reason = message
        self.offset = offset
        where = f" (at offset 0x{offset:x})" if offset is not None else ""
        super().__init__(f"{message}{where}")


class WatError(DecodeError):
    """WebAssembly text could not be parsed (reported by ``wasm-tools parse``): ``str()`` is
    wasmtime's message, with the line and column; ``reason`` is its first line."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.reason = message.split("\n", 1)[0]


class ValidationError(WasmjitError):
    """The module is well-formed but invalid (spec chapter 3)."""

    def __init__(self, message: str, func: int | None = None, offset: int | None = None) -> None:
        self.reason = message
        self.func = func
        self.offset = offset
        where = []
        if func is not None:
            where.append(f"in function {func}")
        if offset is not None:
            where.append(f"at offset 0x{offset:x}")
        super().__init__(message + (f" ({', '.join(where)})" if where else ""))


class UnsupportedError(WasmjitError):
    """A feature wasmjit does not implement yet (SIMD, a tier that does not exist yet)."""


class LinkError(WasmjitError):
    """Imports could not be resolved: an unknown import or one of an incompatible type."""


class WasmjitTypeError(WasmjitError, TypeError):
    """A host value of the wrong type or an argument count mismatch at the API boundary."""


class WasmjitValueError(WasmjitError, ValueError):
    """An object used after its end: a closed Store, or a Caller after its host call returned
    (wasmtime-py raises ValueError there)."""


class TrapCode(enum.Enum):
    """Why a trap happened; member names are wasmtime-py's ``TrapCode`` names."""

    STACK_OVERFLOW = "call stack exhausted"
    MEMORY_OUT_OF_BOUNDS = "out of bounds memory access"
    HEAP_MISALIGNED = "misaligned memory access"
    TABLE_OUT_OF_BOUNDS = "out of bounds table access"
    INDIRECT_CALL_TO_NULL = "uninitialized element"
    BAD_SIGNATURE = "indirect call type mismatch"
    INTEGER_OVERFLOW = "integer overflow"
    INTEGER_DIVISION_BY_ZERO = "integer divide by zero"
    BAD_CONVERSION_TO_INTEGER = "invalid conversion to integer"
    UNREACHABLE = "unreachable"
    INTERRUPT = "interrupt"
    OUT_OF_FUEL = "all fuel consumed by WebAssembly"
    # call_indirect with an index past the table's end ("undefined element" in the spec tests)
    UNDEFINED_ELEMENT = "undefined element"

    @property
    def message(self) -> str:
        """The spec test suite's text for this trap."""
        return self.value

    @property
    def wasmtime_text(self) -> str:
        """How wasmtime words this trap after "wasm trap: " (the spec's text where they agree)."""
        return _WASMTIME_TEXT.get(self, self.value)


_WASMTIME_TEXT = {
    TrapCode.UNREACHABLE: "wasm `unreachable` instruction executed",
    TrapCode.TABLE_OUT_OF_BOUNDS: "undefined element: out of bounds table access",
    TrapCode.UNDEFINED_ELEMENT: "undefined element: out of bounds table access",
}


@dataclass(frozen=True)
class Frame:
    """One wasm activation in a trap's backtrace (wasmtime-py's ``Frame`` properties)."""

    func_index: int
    func_name: str | None
    module_name: str | None
    func_offset: int
    module_offset: int


MAX_PRINTED_FRAMES = 100  # a stack overflow has thousands of frames; all stay in `frames`


class Trap(WasmjitError):
    """A wasm trap: ``trap_code``, the spec's ``reason`` text, and ``frames`` (innermost first).

    ``Trap(message)`` also works as in wasmtime-py, for host functions that want to trap.
    """

    def __init__(self, reason: str | TrapCode, frames: list[Frame] | None = None) -> None:
        if isinstance(reason, TrapCode):
            self.trap_code: TrapCode | None = reason
            self.reason = reason.message
        else:
            self.trap_code = None
            self.reason = reason
        self.frames: list[Frame] = list(frames or [])
        # Raised by wasm (not by a host function): host functions it passes through on its way
        # out let it collect the frames of the wasm that called them.
        self.from_wasm = False
        super().__init__(self.reason)

    @property
    def message(self) -> str:
        """The full text, as ``str(trap)``."""
        return str(self)

    @property
    def cause(self) -> str:
        """The text after "Caused by:": "wasm trap: " and wasmtime's wording for a trap with a
        code; a message alone (``Trap("...")``, a host-defined failure), as wasmtime prints errors."""
        return self.reason if self.trap_code is None else f"wasm trap: {self.trap_code.wasmtime_text}"

    def __str__(self) -> str:
        if not self.frames:
            return self.cause
        lines = ["error while executing at wasm backtrace:"]
        for i, frame in enumerate(self.frames[:MAX_PRINTED_FRAMES]):
            name = demangle(frame.func_name) if frame.func_name else f"<wasm function {frame.func_index}>"
            lines.append(f"{i:>5}: {frame.module_offset:>#8x} - {frame.module_name or '<unknown>'}!{name}")
        if len(self.frames) > MAX_PRINTED_FRAMES:
            lines.append(f"      ... {len(self.frames) - MAX_PRINTED_FRAMES} more frames")
        lines += ["", "Caused by:", f"    {self.cause}", ""]  # ends in a newline, as wasmtime's
        return "\n".join(lines)
