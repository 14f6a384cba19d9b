"""The options of a ``hubspot`` target: marshmallow schemas and their validators."""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from marshmallow import ValidationError, fields, validate, validates

from connector.adapters.base import IdString, OptionsSchema

#: The HubSpot-defined call property for "the call's id in the calling system": HubSpot's
#: calling extensions set it to the provider's call id (recordings are looked up by it).
CALL_ID_PROPERTY = "hs_call_external_id"


def _store_url(value: str) -> None:
    if not value.startswith(("sqlite:///", "redis://", "rediss://", "unix://")):
        raise ValidationError("Must be sqlite:///FILE or redis://HOST:PORT/DB (or null).")


class _RateLimitOptions(OptionsSchema):
    requests_per_10s = fields.Integer(load_default=90, validate=validate.Range(min=1))
    searches_per_second = fields.Integer(load_default=4, validate=validate.Range(min=1))


class _TicketOptions(OptionsSchema):
    channels = fields.List(IdString(), required=True, validate=validate.Length(min=1))
    pipeline = IdString(required=True)
    stage = IdString(required=True)


class HubSpotOptions(OptionsSchema):
    """Options of a ``hubspot`` target (see the package docstring for what they change)."""

    access_token = fields.String(required=True, validate=validate.Length(min=1))
    base_url = fields.String(
        load_default="https://api.hubapi.com",
        validate=validate.URL(schemes={"http", "https"}, require_tld=False),
    )
    connect_timeout = fields.Float(load_default=5.0, validate=validate.Range(min=0.1, max=120))
    read_timeout = fields.Float(load_default=30.0, validate=validate.Range(min=0.1, max=600))
    rate_limit = fields.Nested(
        _RateLimitOptions,
        load_default=lambda: {"requests_per_10s": 90, "searches_per_second": 4},
    )
    rate_limit_store = fields.String(load_default=None, allow_none=True, validate=_store_url)
    associate_company = fields.Boolean(load_default=True)
    deal_rule = fields.String(
        load_default="none", validate=validate.OneOf(["none", "most_recent_open"])
    )
    ticket = fields.Nested(_TicketOptions, load_default=None, allow_none=True)
    unique_call_property = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(min=1)
    )
    call_id_property = fields.String(load_default=CALL_ID_PROPERTY, validate=validate.Length(min=1))
    mapping = fields.String(load_default=None, allow_none=True)
    owners = fields.Dict(keys=IdString(), values=IdString(), load_default=dict)
    cache_seconds = fields.Float(load_default=300.0, validate=validate.Range(min=0))
    portal_time_zone = fields.String(load_default="UTC")
    required_properties = fields.List(
        fields.String(validate=validate.Length(min=1)), load_default=list
    )

    @validates("portal_time_zone")
    def _known_zone(self, value: str, **_: Any) -> None:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValidationError(f"Unknown time zone {value!r} (use e.g. Europe/Berlin).") from exc
