"""The adapter contract test kit: subclass `AdapterContract` in your adapter's test suite.

Every built-in adapter runs it, and third-party adapters should too::

    from connector.testing import AdapterContract

    class TestMyCrmContract(AdapterContract):
        type_name = "mycrm"

        def make_adapter(self, tmp_path):
            return MyCrmAdapter("mycrm", MyCrmAdapter.config_schema().load({...}))

        def count_logged_calls(self, adapter, call_id):
            return ...  # how many call records the target now holds for call_id

Run it with pytest; the kit needs nothing but pytest and the connector.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from marshmallow import Schema, ValidationError

from connector.adapters import (
    Adapter,
    AdapterError,
    CheckResult,
    DeliveryJob,
    Journal,
    adapter_class,
)
from connector.payload import CallReport, User, parse_report

__all__ = ["AdapterContract", "example_report", "minimal_report"]

_EXAMPLE = Path(__file__).parent.parent / "examples" / "example-v1.json"


def example_report(call_id: str | None = None) -> CallReport:
    """sipgate's example call (shipped with the package), optionally under another call id."""
    document: dict[str, Any] = json.loads(_EXAMPLE.read_text(encoding="utf-8"))
    if call_id is not None:
        document["call"]["id"] = call_id
    return parse_report(document)


def minimal_report(call_id: str = "contract-minimal-1") -> CallReport:
    """A call with no AI content at all and a withheld caller number."""
    return CallReport(
        call_id=call_id,
        payload_version="1",
        from_number="anonymous",
        to_number="4930123456789",
        start_time=datetime(2026, 1, 5, 8, 0, tzinfo=UTC),
        end_time=None,
        duration=timedelta(seconds=3),
        direction="IN",
        users=(User("w1", "9999999w1", "9999999", "Erika", "Beispiel", "Erika Beispiel"),),
    )


class AdapterContract(ABC):
    """Behaviour every adapter promises; subclasses say how to build and inspect theirs."""

    #: The adapter's type name in the ``sipgate_crm.adapters`` entry-point group.
    type_name: str = ""

    @abstractmethod
    def make_adapter(self, tmp_path: Path) -> Adapter:
        """A ready adapter writing to a target that is reachable and empty."""

    @abstractmethod
    def count_logged_calls(self, adapter: Adapter, call_id: str) -> int:
        """How many call records the target holds for `call_id`."""

    def test_registered_under_its_type_name(self, tmp_path: Path) -> None:
        adapter = self.make_adapter(tmp_path)
        assert adapter_class(self.type_name) is type(adapter)
        assert type(adapter).type_name == self.type_name

    def test_declares_a_marshmallow_options_schema(self, tmp_path: Path) -> None:
        schema_class = type(self.make_adapter(tmp_path)).config_schema
        assert issubclass(schema_class, Schema)
        try:
            schema_class().load({"surely_not_an_option_of_any_adapter": 1})
        except ValidationError as exc:
            assert "surely_not_an_option_of_any_adapter" in exc.messages
        else:  # pragma: no cover - the assertion below explains
            raise AssertionError("Unknown options must be rejected (they are usually typos).")

    def test_check_reports_a_healthy_target(self, tmp_path: Path) -> None:
        results = self.make_adapter(tmp_path).check()
        assert results, "check() must say something"
        assert all(isinstance(r, CheckResult) for r in results)
        assert all(r.ok for r in results), [r.message for r in results if not r.ok]

    def test_logs_the_example_call_once(self, tmp_path: Path) -> None:
        adapter = self.make_adapter(tmp_path)
        report = example_report("contract-example-1")
        result = adapter.write(DeliveryJob(report), Journal())
        assert result.refs, "write() must return references of what it wrote"
        assert self.count_logged_calls(adapter, report.call_id) == 1

    def test_a_repeated_delivery_does_not_log_twice(self, tmp_path: Path) -> None:
        adapter = self.make_adapter(tmp_path)
        report = example_report("contract-repeat-1")
        journal = Journal()
        adapter.write(DeliveryJob(report), journal)
        # The retry sees what the first attempt recorded, as the ledger would hand it back.
        adapter.write(DeliveryJob(report), Journal(journal.as_dict()))
        assert self.count_logged_calls(adapter, report.call_id) == 1

    def test_a_call_without_ai_content_or_caller_id_is_logged(self, tmp_path: Path) -> None:
        adapter = self.make_adapter(tmp_path)
        report = minimal_report()
        try:
            adapter.write(DeliveryJob(report), Journal())
        except AdapterError as exc:  # pragma: no cover - explained by the message
            raise AssertionError(f"A minimal call must not fail: {exc}") from exc
        assert self.count_logged_calls(adapter, report.call_id) == 1
