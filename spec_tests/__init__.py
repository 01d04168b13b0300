"""The WebAssembly 2.0 spec suite under pytest, and ``python -m spec_tests`` to run one file.

Everything the suite is configured by lives here: the spec directory, the tiers, the files
the engine does not support, and (in expected_failures.toml) the files known to fail.
"""

from __future__ import annotations

import fnmatch
import os
import tomllib
from pathlib import Path

from wasmjit.api import AVAILABLE_TIERS
from wasmjit.api import TIERS as KNOWN_TIERS

REPO = Path(__file__).resolve().parent.parent
SPEC_DIR = Path(os.environ.get("WASMJIT_SPEC_DIR") or REPO.parent / "shared" / "spec" / "wasm-2.0")
EXPECTED_FAILURES = Path(__file__).resolve().parent / "expected_failures.toml"

# The spec suite runs on every tier the engine provides (one definition, in wasmjit.api).
TIERS = list(AVAILABLE_TIERS)

# Files no tier supports yet (glob pattern -> reason); they are collected as skipped.
UNSUPPORTED = {"simd_*.wast": "SIMD is not supported yet"}


class SpecSetupError(RuntimeError):
    """The spec files or the suite's configuration are missing or inconsistent."""


def selected_tiers() -> list[str]:
    """TIERS, or the comma-separated list in $WASMJIT_SPEC_TIERS."""
    raw = os.environ.get("WASMJIT_SPEC_TIERS", "").strip()
    if not raw:
        return list(TIERS)
    tiers = [t.strip() for t in raw.split(",") if t.strip()]
    unknown = [t for t in tiers if t not in KNOWN_TIERS]
    if unknown:
        raise SpecSetupError(f"WASMJIT_SPEC_TIERS names unknown tiers {unknown}; known: {KNOWN_TIERS}")
    return tiers


def unsupported_reason(path: Path) -> str | None:
    for pattern, reason in UNSUPPORTED.items():
        if fnmatch.fnmatch(path.name, pattern):
            return reason
    return None


def all_files() -> list[Path]:
    """Every .wast file of the spec directory; SpecSetupError if there is none."""
    if not SPEC_DIR.is_dir():
        raise SpecSetupError(f"the spec test directory {SPEC_DIR} does not exist: the suite expects the "
                             "shared data folder ../shared beside the clone (or set WASMJIT_SPEC_DIR)")
    files = sorted(SPEC_DIR.glob("*.wast"))
    if not files:
        raise SpecSetupError(f"no .wast files in {SPEC_DIR}")
    return files


def supported_files() -> list[Path]:
    return [p for p in all_files() if unsupported_reason(p) is None]


def unsupported_files() -> list[Path]:
    return [p for p in all_files() if unsupported_reason(p) is not None]


def expected_failures() -> dict[str, dict[str, str]]:
    """tier -> file name -> reason, from expected_failures.toml (checked against the files)."""
    with EXPECTED_FAILURES.open("rb") as f:
        table = tomllib.load(f)
    names = {p.name for p in supported_files()}
    for tier, files in table.items():
        if tier not in KNOWN_TIERS or not isinstance(files, dict):
            raise SpecSetupError(f"{EXPECTED_FAILURES.name}: [{tier}] is not a known tier table")
        for name, reason in files.items():
            if name not in names or not isinstance(reason, str):
                raise SpecSetupError(f"{EXPECTED_FAILURES.name}: [{tier}] {name!r} is not a supported "
                                     "spec file with a reason string")
    return table
