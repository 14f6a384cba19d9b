"""The one scrubber for error messages."""

from __future__ import annotations

import pytest

from connector.adapters import CrmRecord, DeliveryJob, RetryableError, scrub, scrubbed_errors
from connector.testing import example_report


def test_removes_numbers_addresses_credentials_and_known_values() -> None:
    text = (
        "Contact 'Erika Beispiel' (+49 30 1234567, erika@example.com) rejected; "
        "Authorization: Bearer abcDEF123456ghi; url ?api_token=zz9 key "
        "pat-na1-0a1b2c3d-4e5f-6789-abcd-ef0123456789"
    )
    out = scrub(text, secrets=["Erika Beispiel"])
    for leaked in ("Erika", "1234567", "erika@", "abcDEF123456ghi", "zz9", "0a1b2c3d"):
        assert leaked not in out
    assert out.startswith("Contact") and "rejected" in out


def test_keeps_codes_and_field_names_and_cuts_long_text() -> None:
    assert scrub("HTTP 422 INVALID_FIELD: hs_call_title") == "HTTP 422 INVALID_FIELD: hs_call_title"
    assert len(scrub("word " * 200, limit=50)) <= 50
    assert scrub("line\n  two") == "line two"


def test_scrubbed_errors_removes_the_jobs_names_and_keeps_the_error() -> None:
    with pytest.raises(RetryableError) as caught, scrubbed_errors(["Erika Beispiel", "Beispiel"]):
        raise RetryableError("Rejected: LastName 'Beispiel' for Erika Beispiel", retry_after=7)
    assert "Beispiel" not in str(caught.value)
    assert caught.value.retry_after == 7


def test_a_job_names_its_personal_values() -> None:
    report = example_report()
    record = CrmRecord("contact", "1", (), name="Erika Beispiel")
    values = DeliveryJob(report, matches=(record,)).personal_values()
    assert "Erika Beispiel" in values and "Beispiel" in values
    assert [u.full_name for u in report.users if u.full_name]
    assert all(u.full_name in values for u in report.users if u.full_name)
