"""The one scrubber for error messages."""

from __future__ import annotations

from connector.adapters import scrub


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
