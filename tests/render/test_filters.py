"""Tests for connector.render.filters: dates in the configured zone, durations, numbers."""

from __future__ import annotations

import datetime as dt

from connector.payload import CallReport
from connector.render.context import build_context
from tests.render.helpers import render_one


def test_date_and_datetime_filters(report_v1: CallReport) -> None:
    context = build_context(report_v1)
    assert render_one("{{ call.start | date }}", context) == "2026-04-08"
    assert render_one("{{ call.date | date('%d.%m.%Y') }}", context) == "08.04.2026"
    assert render_one("{{ call.start | datetime }}", context) == "2026-04-08 11:22"
    assert render_one("{{ call.end | datetime('%H:%M:%S') }}", context) == "11:24:04"
    # aware datetimes from elsewhere (extra) are shown in the configured timezone
    context = build_context(
        report_v1, extra={"due": dt.datetime(2026, 1, 15, 23, 30, tzinfo=dt.UTC)}
    )
    assert render_one("{{ due | datetime }}", context) == "2026-01-16 00:30"
    assert render_one("{{ '2026-01-15' | date('%d.%m.') }}", context) == "15.01."
    assert render_one("[{{ none | date }}]", {"none": None}) == "[]"


def test_duration_human_filter(report_v1: CallReport) -> None:
    en = build_context(report_v1)
    de = build_context(report_v1, language="de")
    source = "{{ call.duration | duration_human }}"
    assert render_one(source, en) == "1 min 23 s"
    assert render_one(source, de) == "1 Min. 23 Sek."
    assert render_one("{{ 3725 | duration_human }}", en) == "1 h 2 min 5 s"
    assert render_one("{{ 3725 | duration_human }}", de) == "1 Std. 2 Min. 5 Sek."
    assert render_one("{{ 0 | duration_human }}", de) == "0 Sek."
    assert render_one("{{ 3600 | duration_human('en') }}", de) == "1 h"


def test_number_filters(report_v1: CallReport) -> None:
    context = build_context(report_v1)
    assert render_one("{{ remote.raw | e164 }}", context) == "+4921163553400"
    assert render_one("{{ remote.raw | national }}", context) == "0211 63553400"
    assert render_one("{{ '0211 / 635534-00' | e164 }}", context) == "+4921163553400"
    assert render_one("{{ '+491751234567' | national }}", context) == "0175 1234567"
    assert render_one("{{ 'anonymous' | e164 }}", context) == "anonymous"
    assert render_one("[{{ none | national }}]", {"none": None}) == "[]"
