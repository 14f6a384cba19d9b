"""The adapter contract suite: subclass `AdapterContract` in your adapter's test suite.

Every built-in adapter runs it, and third-party adapters should too::

    from connector.testing import AdapterContract

    class TestMyCrmContract(AdapterContract):
        type_name = "mycrm"

        def make_adapter(self, tmp_path):
            return MyCrmAdapter("mycrm", MyCrmAdapter.config_schema().load({...}))

        def make_unreachable_adapter(self, tmp_path):
            return ...  # the same adapter, configured for a target that does not answer

        def count_logged_calls(self, adapter, call_id):
            return ...  # how many call records the target now holds for call_id

The optional hooks (`add_record`, `count_tasks`, `fail_next_write`, `lose_next_write_answer`,
`secrets`) switch on the behaviours that need them; a behaviour whose hook is missing is skipped
with the hook's name. `connector.testing.ResponsesTarget` gives an HTTP adapter a fake CRM on
``responses`` that implements the fault hooks. Run it with pytest.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from marshmallow import Schema, ValidationError

from connector.adapters import (
    Adapter,
    AdapterError,
    CheckResult,
    CrmRecord,
    DeliveryJob,
    Journal,
    PermanentError,
    PhoneNumber,
    RetryableError,
    TaskSpec,
    adapter_class,
    parse_stored,
)
from connector.jsonschema import object_schema, undescribed
from connector.payload import CallReport, User, parse_report

__all__ = ["AdapterContract", "example_report", "minimal_report"]

_EXAMPLE = Path(__file__).parent.parent / "examples" / "example-v1.json"

#: The caller of the contract's calls, and personal data no error message may repeat.
CALLER = "+49 211 63553400"
CALLER_NAME = "Erika Beispiel"
CALLER_EMAIL = "erika.beispiel@example.com"


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


def _caller() -> PhoneNumber:
    number = parse_stored(CALLER, "DE")
    assert number is not None
    return number


class _Crash(Exception):
    """The worker died right after the journal persisted an entry."""


class AdapterContract(ABC):
    """Behaviour every adapter promises; subclasses say how to build and inspect theirs."""

    #: The adapter's type name.
    type_name: ClassVar[str] = ""
    #: What a target entry's ``type`` says to get the class: the entry-point name (the default:
    #: `type_name`) or ``module:Class``.
    registered_as: ClassVar[str] = ""
    #: The error class each status of a write answer must come out as (`fail_next_write`); a
    #: status the target answers itself (e.g. a 401 that means "log in again") is left out.
    error_statuses: ClassVar[Mapping[int, type[AdapterError]]] = {
        400: PermanentError,
        401: PermanentError,
        403: PermanentError,
        429: RetryableError,
        500: RetryableError,
        503: RetryableError,
    }

    # --- what a subclass provides ------------------------------------------------------------

    @abstractmethod
    def make_adapter(self, tmp_path: Path) -> Adapter:
        """A ready adapter writing to a target that is reachable and empty."""

    @abstractmethod
    def make_unreachable_adapter(self, tmp_path: Path) -> Adapter:
        """The adapter configured for a target that cannot be reached (nothing listens)."""

    @abstractmethod
    def count_logged_calls(self, adapter: Adapter, call_id: str) -> int:
        """How many call records the target holds for `call_id`."""

    def add_record(self, adapter: Adapter, number: PhoneNumber) -> CrmRecord | None:
        """Put a record with phone `number` into the target and return it as a search would;
        ``None``: the target has no records to match (the default)."""
        return None

    def count_tasks(self, adapter: Adapter, call_id: str) -> int | None:
        """How many follow-up tasks the target holds for `call_id`; ``None``: no tasks."""
        return None

    def owner_id(self, adapter: Adapter) -> str | None:
        """An owner id the target knows, for a matched job; ``None``: no owners."""
        return None

    def fail_next_write(self, adapter: Adapter, status: int, echo: str) -> bool:
        """Make the target answer its next write with HTTP `status` and an error text holding
        `echo` (as CRMs repeat the values sent); ``False``: the target cannot (the default)."""
        return False

    def lose_next_write_answer(self, adapter: Adapter) -> bool:
        """Make the target apply its next write but lose the answer (a timeout or a dropped
        connection); ``False``: the target cannot (the default)."""
        return False

    def let_time_pass(self, adapter: Adapter, seconds: float) -> bool:
        """Move the adapter's (and the target's) clock on by `seconds`, when a retry was asked to
        wait (for a search index to catch up); ``False``: the clocks are real (the default)."""
        return False

    def secrets(self, adapter: Adapter) -> Sequence[str]:
        """The credentials in the adapter's options, which no message may contain."""
        return ()

    # --- helpers -----------------------------------------------------------------------------

    def _adapter(self, tmp_path: Path) -> Adapter:
        adapter = self.make_adapter(tmp_path)
        self._made = [*getattr(self, "_made", []), adapter]
        return adapter

    @pytest.fixture(autouse=True)
    def _close_adapters(self) -> Any:
        yield
        for adapter in getattr(self, "_made", []):
            adapter.close()
        self._made = []

    def _matched_job(self, adapter: Adapter, call_id: str) -> DeliveryJob:
        number = _caller()
        record = self.add_record(adapter, number)
        owner = self.owner_id(adapter)
        report = replace(example_report(call_id), from_number=number.e164.lstrip("+"))
        tasks = (
            TaskSpec("Send the offer", "Offer for the plan change.", date(2026, 4, 10), "high"),
            TaskSpec("Call back", "", date(2026, 4, 14), "low", owner),
        )
        return DeliveryJob(
            report,
            fields=self._fields(adapter, "Call with the customer"),
            matches=(record,) if record is not None else (),
            tasks=tasks,
            owner_id=owner,
            remote=number,
            options={"match_status": "matched" if record else "unmatched", "language": "en"},
        )

    def _fields(self, adapter: Adapter, text: str) -> dict[str, str]:
        return {name: text[:limit] for name, limit in type(adapter).field_limits.items()}

    def _error_of_write(self, adapter: Adapter, job: DeliveryJob) -> AdapterError:
        try:
            adapter.write(job, Journal())
        except AdapterError as exc:
            return exc
        raise AssertionError("The write succeeded although the target answered with an error.")

    def _redeliver(self, adapter: Adapter, job: DeliveryJob, journal: Journal) -> None:
        """Deliver `job` again as the ledger would: with what `journal` holds, and once more
        after each wait the adapter asks for (while `let_time_pass` can make it pass)."""
        for _ in range(5):
            try:
                adapter.write(job, Journal(journal.as_dict(), save=journal.record))
                return
            except RetryableError as exc:
                if not self.let_time_pass(adapter, exc.retry_after or 1.0):
                    raise
        raise AssertionError("The delivery still waits after five retries.")

    def _require(self, available: bool, hook: str) -> None:
        if not available:
            pytest.skip(f"{type(self).__name__}: no {hook} (a hook or declaration)")

    # --- the behaviours ----------------------------------------------------------------------

    def test_registered_under_its_type_name(self, tmp_path: Path) -> None:
        adapter = self._adapter(tmp_path)
        assert adapter_class(self.registered_as or self.type_name) is type(adapter)
        assert type(adapter).type_name == self.type_name

    def test_declares_a_marshmallow_options_schema(self, tmp_path: Path) -> None:
        schema_class = type(self._adapter(tmp_path)).config_schema
        assert issubclass(schema_class, Schema)
        try:
            schema_class().load({"surely_not_an_option_of_any_adapter": 1})
        except ValidationError as exc:
            assert "surely_not_an_option_of_any_adapter" in exc.messages
        else:  # pragma: no cover - the assertion below explains
            raise AssertionError("Unknown options must be rejected (they are usually typos).")

    def test_the_options_have_a_json_schema(self, tmp_path: Path) -> None:
        schema = object_schema(type(self._adapter(tmp_path)).config_schema())
        json.dumps(schema)  # editors read it: it must be JSON
        assert schema["additionalProperties"] is False
        missing = undescribed(schema)
        assert not missing, (
            f"Options without a description (editors show it on hover): {', '.join(missing)}; "
            "give each option(..., help=...)."
        )

    def test_declarations_are_consistent(self, tmp_path: Path) -> None:
        cls = type(self._adapter(tmp_path))
        assert all(isinstance(v, int) and v > 0 for v in cls.field_limits.values())
        assert set(cls.creatable_objects) <= {*cls.searchable_objects, "contact", "lead"}
        mapping = cls.default_mapping
        if mapping is not None:
            assert mapping.is_file(), mapping

    def test_check_reports_a_healthy_target(self, tmp_path: Path) -> None:
        results = self._adapter(tmp_path).check()
        assert results, "check() must say something"
        assert all(isinstance(r, CheckResult) for r in results)
        assert all(r.ok for r in results), [r.message for r in results if not r.ok]

    def test_check_on_an_unreachable_target_fails_without_raising(self, tmp_path: Path) -> None:
        adapter = self.make_unreachable_adapter(tmp_path)
        try:
            results = adapter.check()
        finally:
            adapter.close()
        assert results and not all(r.ok for r in results), [r.message for r in results]

    def test_a_write_to_an_unreachable_target_is_retried(self, tmp_path: Path) -> None:
        adapter = self.make_unreachable_adapter(tmp_path)
        try:
            with pytest.raises(RetryableError):
                adapter.write(DeliveryJob(example_report("contract-unreachable-1")), Journal())
        finally:
            adapter.close()

    def test_logs_the_example_call_once(self, tmp_path: Path) -> None:
        adapter = self._adapter(tmp_path)
        report = example_report("contract-example-1")
        result = adapter.write(DeliveryJob(report), Journal())
        assert result.refs, "write() must return references of what it wrote"
        assert self.count_logged_calls(adapter, report.call_id) == 1

    def test_the_references_and_the_journal_are_json(self, tmp_path: Path) -> None:
        adapter = self._adapter(tmp_path)
        journal = Journal()
        result = adapter.write(self._matched_job(adapter, "contract-json-1"), journal)
        json.dumps(dict(result.refs))  # the ledger stores both as JSON
        json.dumps(journal.as_dict())

    def test_a_repeated_delivery_does_not_log_twice(self, tmp_path: Path) -> None:
        adapter = self._adapter(tmp_path)
        report = example_report("contract-repeat-1")
        journal = Journal()
        adapter.write(DeliveryJob(report), journal)
        # The retry sees what the first attempt recorded, as the ledger would hand it back.
        adapter.write(DeliveryJob(report), Journal(journal.as_dict()))
        assert self.count_logged_calls(adapter, report.call_id) == 1

    def test_a_call_without_ai_content_or_caller_id_is_logged(self, tmp_path: Path) -> None:
        adapter = self._adapter(tmp_path)
        report = minimal_report()
        try:
            adapter.write(DeliveryJob(report), Journal())
        except AdapterError as exc:  # pragma: no cover - explained by the message
            raise AssertionError(f"A minimal call must not fail: {exc}") from exc
        assert self.count_logged_calls(adapter, report.call_id) == 1

    def test_a_full_report_with_empty_fields_is_logged(self, tmp_path: Path) -> None:
        adapter = self._adapter(tmp_path)
        job = DeliveryJob(example_report("contract-empty-fields-1"), fields={})
        adapter.write(job, Journal())
        assert self.count_logged_calls(adapter, "contract-empty-fields-1") == 1

    def test_a_matched_job_with_tasks_and_owner_is_logged_once(self, tmp_path: Path) -> None:
        adapter = self._adapter(tmp_path)
        job = self._matched_job(adapter, "contract-matched-1")
        adapter.write(job, Journal())
        assert self.count_logged_calls(adapter, "contract-matched-1") == 1
        tasks = self.count_tasks(adapter, "contract-matched-1")
        assert tasks in (None, len(job.tasks))

    def test_the_matched_job_finds_its_record(self, tmp_path: Path) -> None:
        adapter = self._adapter(tmp_path)
        self._require(bool(type(adapter).searchable_objects), "searchable_objects")
        record = self.add_record(adapter, _caller())
        self._require(record is not None, "add_record")
        found = adapter.search_by_phone(_caller(), type(adapter).searchable_objects)
        assert record is not None and record.id in {r.id for r in found}
        assert all(r.object_type in type(adapter).searchable_objects for r in found)

    def test_a_search_on_an_empty_target_finds_nothing(self, tmp_path: Path) -> None:
        adapter = self._adapter(tmp_path)
        self._require(bool(type(adapter).searchable_objects), "searchable_objects")
        assert adapter.search_by_phone(_caller(), type(adapter).searchable_objects) == []

    def _named_record(self, adapter: Adapter) -> CrmRecord:
        """A record added with a name (`add_record`), for the name search behaviours."""
        self._require(type(adapter).supports_name_search, "supports_name_search")
        record = self.add_record(adapter, _caller())
        self._require(record is not None and bool(record.name.split()), "add_record with a name")
        assert record is not None
        return record

    def test_a_name_search_finds_a_record_by_a_part_of_its_name(self, tmp_path: Path) -> None:
        adapter = self._adapter(tmp_path)
        record = self._named_record(adapter)
        part = max(record.name.split(), key=len)  # one word of the name: "Beispiel"
        for typed in (part, part.upper(), part[:4], record.name):
            found = adapter.search_by_name(typed, type(adapter).searchable_objects)
            assert record.id in {r.id for r in found}, typed
        assert all(r.object_type in type(adapter).searchable_objects for r in found)

    def test_a_name_nobody_has_finds_nothing(self, tmp_path: Path) -> None:
        adapter = self._adapter(tmp_path)
        self._named_record(adapter)
        for typed in ("Zyxwvutsrq", "Zyxwvutsrq Qwertzuiopy", "", "  "):
            assert adapter.search_by_name(typed, type(adapter).searchable_objects) == [], typed

    def test_a_name_search_escapes_what_a_person_types(self, tmp_path: Path) -> None:
        adapter = self._adapter(tmp_path)
        record = self._named_record(adapter)
        part = max(record.name.split(), key=len)
        types = type(adapter).searchable_objects
        # Query syntax around a word of the name is not syntax: the record is still found.
        for typed in (f'"{part}"', f"{part}*", f"({part})", f"{{{part}}}", f"{part}\\'-+&|!^~:"):
            assert record.id in {r.id for r in adapter.search_by_name(typed, types)}, typed
        # Operators and wildcards do not widen the search (a naive query would find everything).
        for typed in ("*", "* OR Zyxwvutsrq", "Zyxwvutsrq OR *", "?? OR ??", '"" OR *', "*:*"):
            assert adapter.search_by_name(typed, types) == [], typed

    def test_a_replay_after_partial_success_writes_the_rest_once(self, tmp_path: Path) -> None:
        adapter = self._adapter(tmp_path)
        # Crash after the 1st, 2nd, … journal entry was persisted, until a write gets through.
        for crash_after in range(1, 20):
            call_id = f"contract-partial-{crash_after}"
            job = self._matched_job(adapter, call_id)
            persisted: dict[str, Any] = {}

            def save(
                key: str, value: Any, persisted: dict[str, Any] = persisted, at: int = crash_after
            ) -> None:
                persisted[key] = value
                if len(persisted) == at:
                    raise _Crash()

            try:
                adapter.write(job, Journal(save=save))
            except _Crash:
                self._redeliver(adapter, job, Journal(persisted))
                assert self.count_logged_calls(adapter, call_id) == 1, crash_after
                assert self.count_tasks(adapter, call_id) in (None, len(job.tasks)), crash_after
            else:
                assert self.count_logged_calls(adapter, call_id) == 1
                return
        raise AssertionError("The write records more than 19 journal entries.")

    def test_a_retry_after_a_lost_answer_writes_exactly_once(self, tmp_path: Path) -> None:
        adapter = self._adapter(tmp_path)
        job = self._matched_job(adapter, "contract-lost-1")
        self._require(self.lose_next_write_answer(adapter), "lose_next_write_answer")
        journal = Journal()
        with pytest.raises(RetryableError):
            adapter.write(job, journal)
        self._redeliver(adapter, job, journal)
        assert self.count_logged_calls(adapter, "contract-lost-1") == 1

    @pytest.mark.parametrize("status", [400, 401, 403, 429, 500, 503])
    def test_every_error_answer_is_mapped_to_its_error_class(
        self, tmp_path: Path, status: int
    ) -> None:
        self._require(status in self.error_statuses, f"error_statuses[{status}]")
        adapter = self._adapter(tmp_path)
        job = self._matched_job(adapter, f"contract-status-{status}")
        self._require(self.fail_next_write(adapter, status, "rejected"), "fail_next_write")
        error = self._error_of_write(adapter, job)
        expected = self.error_statuses[status]
        assert isinstance(error, expected), (status, type(error), str(error))
        if expected is PermanentError:
            assert not isinstance(error, RetryableError)

    @pytest.mark.parametrize("status", [400, 403, 500])
    def test_no_personal_data_or_token_in_any_error_message(
        self, tmp_path: Path, status: int
    ) -> None:
        adapter = self._adapter(tmp_path)
        job = self._matched_job(adapter, f"contract-scrub-{status}")
        secrets = list(self.secrets(adapter))
        echo = f"{CALLER_NAME} {CALLER} {_caller().e164} {CALLER_EMAIL} {' '.join(secrets)}"
        self._require(self.fail_next_write(adapter, status, echo), "fail_next_write")
        message = str(self._error_of_write(adapter, job))
        number = _caller()
        for leaked in (CALLER_NAME, CALLER_EMAIL, CALLER, *number.variants(), *secrets):
            assert leaked not in message, (leaked, message)

    def test_a_temporary_failure_is_retried_and_then_logged_once(self, tmp_path: Path) -> None:
        adapter = self._adapter(tmp_path)
        job = self._matched_job(adapter, "contract-temporary-1")
        self._require(self.fail_next_write(adapter, 503, "unavailable"), "fail_next_write")
        journal = Journal()
        with pytest.raises(RetryableError):
            adapter.write(job, journal)
        self._redeliver(adapter, job, journal)
        assert self.count_logged_calls(adapter, "contract-temporary-1") == 1

    def test_describe_write_writes_nothing(self, tmp_path: Path) -> None:
        adapter = self._adapter(tmp_path)
        job = self._matched_job(adapter, "contract-describe-1")
        operations = adapter.describe_write(job)
        assert operations and all(isinstance(op, dict) for op in operations)
        json.dumps(operations, default=str)
        assert self.count_logged_calls(adapter, "contract-describe-1") == 0
        assert self.count_tasks(adapter, "contract-describe-1") in (None, 0)

    def test_describe_search_writes_nothing(self, tmp_path: Path) -> None:
        adapter = self._adapter(tmp_path)
        described = adapter.describe_search(_caller(), type(adapter).searchable_objects)
        assert isinstance(described, dict)
        json.dumps(described, default=str)
        assert self.count_logged_calls(adapter, example_report().call_id) == 0

    def test_fields_at_their_limit_are_written(self, tmp_path: Path) -> None:
        adapter = self._adapter(tmp_path)
        self._require(bool(type(adapter).field_limits), "field_limits")
        fields = {name: "ä" * limit for name, limit in type(adapter).field_limits.items()}
        job = replace(self._matched_job(adapter, "contract-limits-1"), fields=fields)
        adapter.write(job, Journal())
        assert self.count_logged_calls(adapter, "contract-limits-1") == 1

    def test_overflow_text_is_stored_when_supported(self, tmp_path: Path) -> None:
        adapter = self._adapter(tmp_path)
        self._require(type(adapter).supports_overflow, "supports_overflow")
        job = replace(self._matched_job(adapter, "contract-overflow-1"), overflow="x" * 5000)
        adapter.write(job, Journal())
        assert self.count_logged_calls(adapter, "contract-overflow-1") == 1

    def test_a_new_caller_gets_one_record_per_journal(self, tmp_path: Path) -> None:
        adapter = self._adapter(tmp_path)
        creatable = type(adapter).creatable_objects
        self._require(bool(creatable), "creatable_objects")
        journal = Journal()
        first = adapter.create_record(creatable[0], _caller(), {}, journal)
        again = adapter.create_record(creatable[0], _caller(), {}, Journal(journal.as_dict()))
        assert first.id == again.id and first.object_type == creatable[0]

    def test_an_unknown_owner_is_none(self, tmp_path: Path) -> None:
        adapter = self._adapter(tmp_path)
        assert adapter.resolve_owner("nobody-at-all@example.invalid") is None

    def test_close_can_be_called_twice(self, tmp_path: Path) -> None:
        adapter = self.make_adapter(tmp_path)
        adapter.close()
        adapter.close()
