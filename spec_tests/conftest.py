"""pytest hooks of the spec suite: name the spec directory and tiers in the report header."""

from __future__ import annotations

from . import SPEC_DIR, selected_tiers


def pytest_report_header() -> list[str]:
    return [f"spec tests: {SPEC_DIR} on tiers {', '.join(selected_tiers())}"]
