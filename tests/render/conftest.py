"""Sample reports for the rendering tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.payload import CallReport, report_from_json

FIXTURES = Path(__file__).parent.parent / "fixtures"


@pytest.fixture
def report_v1() -> CallReport:
    return report_from_json((FIXTURES / "example-v1.json").read_bytes())


@pytest.fixture
def report_legacy() -> CallReport:
    return report_from_json((FIXTURES / "example-legacy.json").read_bytes())
