"""The options of a ``hubspot`` target, declared once as frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
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

    requests_per_10s: int = option(90, validate=validate.Range(min=1))
    searches_per_second: int = option(4, validate=validate.Range(min=1))


@dataclass(frozen=True)
class TicketOptions:
    """A ticket for calls on one of `channels` (ids or names), in `pipeline` at `stage`."""

    channels: tuple[str, ...] = option(
        field=fields.List(IdString(), validate=validate.Length(min=1))
    )
    pipeline: str = option(field=IdString())
    stage: str = option(field=IdString())


@dataclass(frozen=True)
class HubSpotOptions:
    """Options of a ``hubspot`` target (see the package docstring for what they change)."""

    access_token: str = option(validate=validate.Length(min=1))
    base_url: str = option(
        "https://api.hubapi.com",
        validate=validate.URL(schemes={"http", "https"}, require_tld=False),
    )
    connect_timeout: float = option(5.0, validate=validate.Range(min=0.1, max=120))
    read_timeout: float = option(30.0, validate=validate.Range(min=0.1, max=600))
    rate_limit: RateLimitOptions = field(default_factory=RateLimitOptions)
    rate_limit_store: str | None = option(None, validate=_store_url)
    associate_company: bool = True
    deal_rule: Literal["none", "most_recent_open"] = "none"
    ticket: TicketOptions | None = None
    unique_call_property: str | None = option(None, validate=validate.Length(min=1))
    call_id_property: str = option(CALL_ID_PROPERTY, validate=validate.Length(min=1))
    cache_seconds: float = option(300.0, validate=validate.Range(min=0))
    portal_time_zone: str = option("UTC", validate=_known_zone)
    required_properties: tuple[str, ...] = option(
        (), field=fields.List(fields.String(validate=validate.Length(min=1)))
    )
