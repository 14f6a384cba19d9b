"""Test kits for adapter authors: the adapter contract suite and example reports."""

from __future__ import annotations

from connector.testing.contract import AdapterContract, example_report, minimal_report

__all__ = ["AdapterContract", "example_report", "minimal_report"]
