"""Redaction: numbers masked, secrets and path tails scrubbed, one record one line — also in
gunicorn's own logs and tracebacks."""

from __future__ import annotations

import logging
from datetime import timedelta
from types import SimpleNamespace

import pytest
from gunicorn.config import Config as GunicornConfig
from gunicorn.glogging import Logger, SafeAtoms

from connector.logs import RedactingFilter, Redactor, mask_number
from connector.web.server import _DIRECT_ATOMS, RedactingLogger

SECRET = "webhook-secret-0123456789"


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("4921163553400", "**********400"),
        ("+49 211 635534-00", "+** *** *****4-00"),
        ("anonymous", "anonymous"),
        ("", ""),
        ("12", "12"),
    ],
)
def test_all_but_the_last_three_digits_are_masked(number: str, masked: str) -> None:
    assert mask_number(number) == masked


def test_the_secret_filter_scrubs_messages_and_tracebacks() -> None:
    try:
        raise RuntimeError(f"while handling /webhooks/sipgate/{SECRET}")
    except RuntimeError:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "POST %s", (f"/x/{SECRET}",), None
        )
        import sys

        record.exc_info = sys.exc_info()
    RedactingFilter(Redactor([SECRET], None)).filter(record)
    text = logging.Formatter().format(record)
    assert SECRET not in text and "***" in text and "RuntimeError" in text


@pytest.mark.parametrize(
    ("text", "logged"),
    [
        ("POST /webhooks/sipgate/mistyped-secret 403", "POST /webhooks/sipgate/*** 403"),
        ("POST /webhooks/sipgate 200", "POST /webhooks/sipgate 200"),
        ('"POST /webhooks/sipgate/x?y=1 HTTP/1.1"', '"POST /webhooks/sipgate/*** HTTP/1.1"'),
        ("call 4921\nERROR forged", "call 4921\\x0aERROR forged"),
        ("nul \x00 cr \r sep \u2028 del \x7f", "nul \\x00 cr \\x0d sep \\u2028 del \\x7f"),
    ],
)
def test_nothing_after_the_webhook_path_and_no_line_break_is_logged(text: str, logged: str) -> None:
    assert Redactor([], "/webhooks/sipgate")(text) == logged


def test_a_forged_line_stays_inside_its_record_and_tracebacks_keep_their_lines() -> None:
    try:
        raise ValueError("at /webhooks/sipgate/old-secret\nsecond line")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "x", logging.INFO, __file__, 1, "accepted call %s", ("id\nERROR x",), sys.exc_info()
        )
    RedactingFilter(Redactor([], "/webhooks/sipgate")).filter(record)
    first, *rest = logging.Formatter().format(record).split("\n")
    assert first == "accepted call id\\x0aERROR x"
    assert "old-secret" not in "\n".join(rest) and rest  # the traceback's own lines stay


def test_gunicorn_error_log_is_scrubbed() -> None:
    RedactingLogger.redact = Redactor([SECRET], "/webhooks/sipgate")
    try:
        logger = RedactingLogger(GunicornConfig())
        assert any(
            isinstance(f, RedactingFilter) for h in logger.error_log.handlers for f in h.filters
        )
    finally:
        RedactingLogger.redact = Redactor([], None)


@pytest.mark.parametrize(
    "access_log_format",
    [
        '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss',  # the service's
        '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"',  # gunicorn's default
        "%({raw_uri}e)s %({PATH_INFO}e)s %({Referer}i)s %(U)s%(q)s",  # environ and headers
    ],
)
def test_the_access_log_masks_the_secret_in_the_path(access_log_format: str) -> None:
    RedactingLogger.redact = Redactor([SECRET], "/webhooks/sipgate")
    try:
        config = GunicornConfig()
        config.set("access_log_format", access_log_format)
        logger = RedactingLogger(config)
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": f"/webhooks/sipgate/{SECRET}",
            "QUERY_STRING": "",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "RAW_URI": f"/webhooks/sipgate/{SECRET}",
        }
        request = SimpleNamespace(
            headers=[("REFERER", f"https://example.invalid/webhooks/sipgate/{SECRET}")],
            method="POST",
            path=f"/webhooks/sipgate/{SECRET}",
            query="",
            version=(1, 1),
            uri=f"/webhooks/sipgate/{SECRET}",
        )
        response = SimpleNamespace(status="200 OK", sent=10, headers=[], response_length=10)

        atoms = logger.atoms(response, request, environ, timedelta(milliseconds=3))
        line = access_log_format % SafeAtoms(atoms)
        assert SECRET not in line
        assert "/webhooks/sipgate/***" in line
    finally:
        RedactingLogger.redact = Redactor([], None)


def test_the_services_access_atoms_are_gunicorns_values() -> None:
    """The atoms the service computes itself (its format uses only those) equal gunicorn's."""
    environ = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": "/webhooks/sipgate",
        "QUERY_STRING": "a=1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "RAW_URI": "/webhooks/sipgate?a=1",
        "REMOTE_ADDR": "192.0.2.7",
    }
    request = SimpleNamespace(headers=[("HOST", "connector.example")])
    took = timedelta(seconds=1, microseconds=2345)
    config = GunicornConfig()
    for response in (
        SimpleNamespace(status="202 Accepted", sent=21, headers=[]),
        SimpleNamespace(status=204, sent=0, headers=[]),
        SimpleNamespace(status="500 Internal Server Error", sent=None, headers=[]),
    ):
        expected = Logger(config).atoms(response, request, environ, took)
        ours = {key: atom(response, environ, took) for key, atom in _DIRECT_ATOMS.items()}
        assert ours == {key: expected[key] for key in _DIRECT_ATOMS}
    assert {"h", "m", "U", "s", "b", "L"} <= _DIRECT_ATOMS.keys()  # the service's format
    bare = RedactingLogger(config)
    config.set("access_log_format", '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(L)ss')
    assert set(bare.atoms(response, request, environ, took)) == {"h", "m", "U", "s", "b", "L"}
