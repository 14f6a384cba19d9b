"""Test kits for adapter authors: the contract suite, example reports and a fake HTTP CRM."""

from __future__ import annotations

from connector.testing.contract import AdapterContract, example_report, minimal_report
from connector.testing.responses_target import FakeRequest, ResponsesTarget

__all__ = ["AdapterContract", "FakeRequest", "ResponsesTarget", "example_report", "minimal_report"]
