"""One test per (tier, spec file): run it with wasmjit.wast.run_wast and expect no failures.

SIMD files are collected as skipped; ``test_unsupported_files`` runs them once to check that
the engine reports them as unsupported instead of failing or crashing. Files listed in
expected_failures.toml are strict xfails. A missing spec directory fails the collection.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import wasmjit
from wasmjit.wast import FileResult, run_wast

from . import expected_failures, selected_tiers, supported_files, unsupported_files, unsupported_reason

MAX_LISTED = 100  # failure records in one assertion message

ENGINE_MISSING = not hasattr(wasmjit, "Module")


# Tier "tiered" runs twice: with its default thresholds (a mix of interpreted and compiled
# functions) and with thresholds of 1 ("eager": every function tiers up on its first call).
EAGER_TIER_UP = "1,1"


def _cases() -> list:
    xfails = expected_failures()
    cases = []
    variants = [(t, False) for t in selected_tiers()]
    variants += [(t, True) for t in selected_tiers() if t == "tiered"]
    for tier, eager in variants:
        label = f"{tier}-eager" if eager else tier
        for path in supported_files():
            reason = xfails.get(tier, {}).get(path.name)
            marks = [pytest.mark.xfail(reason=reason, strict=True)] if reason else []
            cases.append(pytest.param(tier, path, eager, marks=marks, id=f"{label}-{path.stem}"))
        for path in unsupported_files():
            skip = pytest.mark.skip(reason=unsupported_reason(path))
            cases.append(pytest.param(tier, path, eager, marks=[skip], id=f"{label}-{path.stem}"))
    return cases


def describe(result: FileResult) -> str:
    """The failure records of a result, one a line (at most MAX_LISTED)."""
    lines = [f"{result.name} on {result.tier}: {result.failed} failed, {result.unsupported} unsupported, "
             f"{result.passed} passed"]
    lines += [f"  line {f.line}: {f.command}: {f.reason}" for f in result.failures[:MAX_LISTED]]
    if len(result.failures) > MAX_LISTED:
        lines.append(f"  ... {len(result.failures) - MAX_LISTED} more")
    return "\n".join(lines)


@pytest.mark.parametrize(("tier", "path", "eager"), _cases())
def test_spec(tier: str, path: Path, eager: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    if eager:
        monkeypatch.setenv("WASMJIT_TIER_UP", EAGER_TIER_UP)
    result = run_wast(path, tier)
    # A supported file must not be (even partly) unsupported: that would hide missing features.
    if result.failed or result.unsupported or not result.passed:
        pytest.fail(describe(result), pytrace=False)


@pytest.mark.skipif(ENGINE_MISSING, reason="the wasmjit engine (wasmjit.Module) does not exist yet")
def test_unsupported_files() -> None:
    """Every unsupported file runs to the end, is reported unsupported, and nothing fails."""
    tier = selected_tiers()[0]
    results = [run_wast(path, tier) for path in unsupported_files()]
    bad = [r for r in results if r.failed or not r.unsupported]
    if bad:
        pytest.fail("\n".join(describe(r) for r in bad), pytrace=False)
