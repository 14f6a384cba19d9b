"""Per-target filters: every rule, and the reason recorded for a skipped call."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

import pytest

from connector.config.policy import Filters
from connector.delivery.filters import skip_reason
from connector.payload import Channel, parse_report


@pytest.fixture
def report(example_v1: dict[str, Any]) -> Any:
    return parse_report(example_v1)


def test_default_filters_take_the_example(report: Any) -> None:
    assert skip_reason(report, Filters(), "DE") is None


@pytest.mark.parametrize(
    ("filters", "reason"),
    [
        (Filters(directions=("OUT",)), "direction IN is not taken by this target"),
        (Filters(channels_deny=("Support Channel",)), "channel 'Support Channel' is denied"),
        (
            Filters(channels_deny=("f47ac10b-58cc-4372-a567-0e02b2c3d479",)),
            "channel 'Support Channel' is denied",
        ),
        (
            Filters(channels_allow=("Sales",)),
            "channel 'Support Channel' is not in the allowed channels",
        ),
        (Filters(min_duration_seconds=90), "shorter than 90 s"),
        (Filters(own_numbers=("0211 63553400",)), "internal call"),
        (Filters(blocked_numbers=("+49 (211) 635534-00",)), "blocked number"),
    ],
)
def test_each_filter_skips_with_its_reason(report: Any, filters: Filters, reason: str) -> None:
    assert skip_reason(report, filters, "DE") == reason


def test_allow_list_by_id_or_name(report: Any) -> None:
    assert skip_reason(report, Filters(channels_allow=("Support Channel",)), "DE") is None
    assert (
        skip_reason(report, Filters(channels_allow=("f47ac10b-58cc-4372-a567-0e02b2c3d479",)), "DE")
        is None
    )


def test_no_channel_and_an_allow_list(report: Any) -> None:
    no_channel = dataclasses.replace(report, channel=None)
    assert skip_reason(no_channel, Filters(channels_allow=("Sales",)), "DE") is not None
    assert skip_reason(no_channel, Filters(channels_deny=("Sales",)), "DE") is None


@pytest.mark.parametrize("number", ["12", "4711", "+12345"])
def test_short_numbers_are_internal(report: Any, number: str) -> None:
    internal = dataclasses.replace(report, from_number=number)
    assert skip_reason(internal, Filters(), "DE") == "internal call"
    assert skip_reason(internal, Filters(skip_internal=False), "DE") is None


@pytest.mark.parametrize("number", ["", "anonymous"])
def test_anonymous_callers(report: Any, number: str) -> None:
    anonymous = dataclasses.replace(report, from_number=number)
    assert skip_reason(anonymous, Filters(), "DE") is None
    assert skip_reason(anonymous, Filters(skip_anonymous=True), "DE") == "anonymous caller"


def test_outbound_calls_filter_on_the_callee(report: Any) -> None:
    outbound = dataclasses.replace(
        report, direction="OUT", from_number="4921163553401", to_number="4930123456"
    )
    assert skip_reason(outbound, Filters(blocked_numbers=("030 123456",)), "DE") == "blocked number"
    assert skip_reason(outbound, Filters(blocked_numbers=("0211 63553401",)), "DE") is None


def test_a_blocked_number_of_another_country_does_not_block(report: Any) -> None:
    assert skip_reason(report, Filters(blocked_numbers=("+43 211 63553400",)), "DE") is None


def test_exactly_the_minimum_duration_passes(report: Any) -> None:
    exact = dataclasses.replace(report, duration=timedelta(seconds=30), channel=Channel("c", "x"))
    assert skip_reason(exact, Filters(min_duration_seconds=30), "DE") is None
