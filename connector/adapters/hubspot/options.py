"""The options of a ``hubspot`` target, declared once as frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import ValidationError, fields, validate

from connector.adapters import IdString, option

#: The HubSpot-defined call property for "the call's id in the calling system": HubSpot's
#: calling extensions set it to the provider's call id (recordings are looked up by it).
CALL_ID_PROPERTY = "hs_call_external_id"


def _store_url(value: str) -> None:
    if not value.startswith(("sqlite:///", "redis://", "rediss://", "unix://")):
        raise ValidationError("Must be sqlite:///FILE or redis://HOST:PORT/DB (or null).")


def _known_zone(value: str) -> None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"Unknown time zone {value!r} (use e.g. Europe/Berlin).") from exc


@dataclass(frozen=True)
class RateLimitOptions:
    """HubSpot's request budgets of the app's token, shared by every worker using it."""

    requests_per_10s: int = option(
        90,
        validate=validate.Range(min=1),
        help="Requests per rolling 10 seconds (HubSpot's burst limit of the app).",
    )
    searches_per_second: int = option(
        4, validate=validate.Range(min=1), help="CRM search requests per second."
    )


@dataclass(frozen=True)
class TicketOptions:
    """A ticket for calls on one of `channels` (ids or names), in `pipeline` at `stage`."""

    channels: tuple[str, ...] = option(
        field=fields.List(IdString(), validate=validate.Length(min=1)),
        help="sipgate channel names or ids whose calls also get a ticket.",
    )
    pipeline: str = option(field=IdString(), help="Id of the ticket pipeline.")
    stage: str = option(field=IdString(), help="Id of the pipeline stage new tickets start in.")


@dataclass(frozen=True)
class HubSpotOptions:
    """Options of a ``hubspot`` target (see the package docstring for what they change)."""

    access_token: str = option(
        validate=validate.Length(min=1),
        help="Private app access token or service key: ${HUBSPOT_TOKEN}.",
    )
    base_url: str = option(
        "https://api.hubapi.com",
        validate=validate.URL(schemes={"http", "https"}, require_tld=False),
        help="HubSpot's API address (a sandbox, a proxy or a test server).",
    )
    connect_timeout: float = option(
        5.0, validate=validate.Range(min=0.1, max=120), help="Seconds to connect to HubSpot."
    )
    read_timeout: float = option(
        30.0,
        validate=validate.Range(min=0.1, max=600),
        help="Seconds to wait for HubSpot's answer.",
    )
    rate_limit: RateLimitOptions = option(
        default_factory=RateLimitOptions,
        help="The request budgets of the token, shared by every worker using it.",
    )
    rate_limit_store: str | None = option(
        None,
        validate=_store_url,
        help="Where workers share the budget: sqlite:///FILE or redis://HOST:PORT/DB; "
        "unset: each process on its own.",
    )
    associate_company: bool = option(
        True, help="Also associate the call with the matched contacts' companies."
    )
    deal_rule: Literal["none", "most_recent_open"] = option(
        "none", help="most_recent_open: also associate the contact's most recent open deal."
    )
    ticket: TicketOptions | None = option(
        None, help="A ticket for calls on some channels (e.g. support lines)."
    )
    unique_call_property: str | None = option(
        None,
        validate=validate.Length(min=1),
        help="A call property with unique values of yours: calls are upserted on it.",
    )
    call_id_property: str = option(
        CALL_ID_PROPERTY,
        validate=validate.Length(min=1),
        help="The call property that holds the sipgate call id (retries look calls up by it).",
    )
    cache_seconds: float = option(
        300.0,
        validate=validate.Range(min=0),
        help="How long number-to-contact search results are reused, in seconds.",
    )
    portal_time_zone: str = option(
        "UTC",
        validate=_known_zone,
        help="The portal's time zone: HubSpot resets its daily limit at midnight there.",
    )
    required_properties: tuple[str, ...] = option(
        (),
        field=fields.List(fields.String(validate=validate.Length(min=1))),
        help="More call properties `check` verifies exist in the portal.",
    )
