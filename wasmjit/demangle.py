"""Function names in trap backtraces as wasmtime prints them: Rust's legacy mangling decoded as
rustc-demangle does, then anything the C++ ABI demangler accepts (wasmtime uses cpp_demangle;
libstdc++'s ``__cxa_demangle`` agrees on the names compilers produce), else the name itself.
One-letter names are C++ type codes to both: a function named ``f`` prints as ``float``. Not
decoded (wasmtime decodes them): Rust's v0 mangling (``_R...``) and a few bare C++ abbreviations.
Imports: stdlib only.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import re

_RUST_ESCAPES = {"SP": "@", "BP": "*", "RF": "&", "LT": "<", "GT": ">", "LP": "(", "RP": ")", "C": ","}
_LLVM_SUFFIX = re.compile(r"\.llvm\.[0-9A-F@]*$")


@functools.lru_cache(maxsize=4096)
def demangle(name: str) -> str:
    """``name`` as wasmtime shows it in a backtrace."""
    rust = _rust_legacy(_LLVM_SUFFIX.sub("", name))
    if rust is not None:
        return rust
    return _cxx(name) or name


def _rust_legacy(symbol: str) -> str | None:
    """rustc-demangle's legacy form (``_ZN3foo3bar17h0123456789abcdefE``): the path with its
    ``$..$`` escapes decoded, hash included; None if ``symbol`` is not one."""
    for prefix in ("_ZN", "ZN", "__ZN"):
        if symbol.startswith(prefix) and len(symbol) > len(prefix):
            inner = symbol[len(prefix):]
            break
    else:
        return None
    if not inner.isascii():
        return None
    elements, pos = [], 0
    while pos < len(inner) and inner[pos] != "E":
        digits = re.match(r"\d+", inner[pos:])
        if digits is None:
            return None
        start = pos + len(digits.group())
        pos = start + int(digits.group())
        if pos >= len(inner):
            return None
        elements.append(inner[start:pos])
    if pos >= len(inner) or not elements:
        return None
    suffix = inner[pos + 1:]
    if suffix and not (suffix.startswith(".") and _symbol_like(suffix)):
        return None
    return "::".join(_rust_element(e) for e in elements) + suffix


def _symbol_like(text: str) -> bool:
    return all(c.isascii() and (c.isalnum() or c in "._$") for c in text)


def _rust_element(element: str) -> str:
    """One path element with rustc's escapes (``$LT$``, ``$u20$``, ``..``) decoded."""
    if element.startswith("_$"):
        element = element[1:]
    out = []
    while element:
        if element.startswith(".."):
            out.append("::")
            element = element[2:]
        elif element.startswith("."):
            out.append(".")
            element = element[1:]
        elif element.startswith("$"):
            end = element.find("$", 1)
            char = _rust_escape(element[1:end]) if end > 0 else None
            if char is None:
                break  # printed as it is, from here on
            out.append(char)
            element = element[end + 1:]
        else:
            stop = next((i for i, c in enumerate(element) if c in "$."), len(element))
            out.append(element[:stop])
            element = element[stop:]
    return "".join(out) + element


def _rust_escape(code: str) -> str | None:
    if code in _RUST_ESCAPES:
        return _RUST_ESCAPES[code]
    if code.startswith("u") and re.fullmatch(r"[0-9a-f]+", code[1:]):
        point = int(code[1:], 16)
        if point <= 0x10FFFF and chr(point).isprintable():
            return chr(point)
    return None


@functools.cache
def _cxa_demangle() -> tuple[object, object] | None:
    """libstdc++'s ``__cxa_demangle`` and libc's ``free``, or None where there is no libstdc++."""
    path = ctypes.util.find_library("stdc++")
    try:
        cxx = ctypes.CDLL(path or "libstdc++.so.6")
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    func = cxx.__cxa_demangle
    func.restype = ctypes.c_void_p
    func.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
    free = libc.free
    free.argtypes = [ctypes.c_void_p]
    return func, free


def _cxx(name: str) -> str | None:
    found = _cxa_demangle()
    if found is None or "\0" in name:
        return None
    func, free = found
    status = ctypes.c_int(0)
    result = func(name.encode("utf-8", "surrogateescape"), None, None, ctypes.byref(status))  # type: ignore[operator]
    if not result:
        return None
    try:
        text = ctypes.string_at(result).decode("utf-8", "replace") if status.value == 0 else None
    finally:
        free(result)  # type: ignore[operator]
    return text
