"""The options of a ``zendesk`` target, declared once as a frozen dataclass."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from marshmallow import ValidationError, fields, validate

from connector.adapters import IdString, option

#: Ticket statuses a new ticket may have (Zendesk's ``status`` values, ``closed`` excepted).
TICKET_STATUSES = ("new", "open", "pending", "hold", "solved")
#: Zendesk's ticket priorities.
PRIORITIES = ("low", "normal", "high", "urgent")

_SUBDOMAIN = validate.Regexp(
    r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$",
    error="The Zendesk subdomain, e.g. acme for https://acme.zendesk.com.",
)


def _store_url(value: str) -> None:
    if not value.startswith(("sqlite:///", "redis://", "rediss://", "unix://")):
        raise ValidationError("Must be sqlite:///FILE or redis://HOST:PORT/DB (or null).")


@dataclass(frozen=True)
class ZendeskOptions:
    """Options of a ``zendesk`` target; exactly one of `subdomain` and `url` names the account.

    `group_map` and `assignee_map` are keyed by sipgate user id (``1234567w0`` or ``w0``, as
    the policy's ``owners.users``): the first user of the call found in a map picks the ticket's
    group id, and its assignee (a Zendesk user id, or an agent's e-mail address, looked up and
    cached); without an ``assignee_map`` entry the policy's owner is the assignee.
    """

    email: str = option(
        validate=validate.Email(), help="The Zendesk agent whose API token this is."
    )
    api_token: str = option(validate=validate.Length(min=1), help="A Zendesk API token.")
    subdomain: str | None = option(
        None, validate=_SUBDOMAIN, help="The account: acme for https://acme.zendesk.com."
    )
    url: str | None = option(
        None,
        validate=validate.URL(schemes={"http", "https"}, require_tld=False),
        help="The account's base URL instead of subdomain (e.g. a test server).",
    )
    tags: tuple[str, ...] = option(
        (),
        field=fields.List(fields.String(validate=validate.Length(min=1))),
        help="Tags every ticket gets, added to those made from the call's topics.",
    )
    ticket_status: Literal["new", "open", "pending", "hold", "solved"] = option(
        "new", help="The status of a new ticket."
    )
    priority: Literal["low", "normal", "high", "urgent"] | None = option(
        None, help="The priority of a new ticket (default: not set)."
    )
    group_map: Mapping[str, str] = option(
        default_factory=dict,
        field=fields.Dict(keys=fields.String(), values=IdString()),
        help="sipgate user id → Zendesk group id of the ticket.",
    )
    assignee_map: Mapping[str, str] = option(
        default_factory=dict,
        field=fields.Dict(keys=fields.String(), values=IdString()),
        help="sipgate user id → assignee: a Zendesk user id or an agent's e-mail address.",
    )
    requests_per_minute: int = option(
        200,
        validate=validate.Range(min=1),
        help="Your plan's API requests per minute (200 to 2,500); the worker stays below it.",
    )
    rate_limit_store: str | None = option(
        None,
        validate=_store_url,
        help="sqlite:///FILE or redis://…: share the request budget across worker processes.",
    )
    connect_timeout: float = option(
        5.0, validate=validate.Range(min=0.1, max=120), help="Seconds to connect to Zendesk."
    )
    read_timeout: float = option(
        30.0,
        validate=validate.Range(min=0.1, max=600),
        help="Seconds to wait for Zendesk's answer.",
    )
    cache_seconds: float = option(
        300.0,
        validate=validate.Range(min=0),
        help="How long an agent's e-mail → user id lookup is kept.",
    )

    def __post_init__(self) -> None:
        if (self.subdomain is None) == (self.url is None):
            raise ValueError("Give exactly one of subdomain and url.")

    @property
    def base_url(self) -> str:
        """Where the API lives: ``https://<subdomain>.zendesk.com`` or `url`."""
        if self.url is not None:
            return self.url.rstrip("/")
        return f"https://{self.subdomain}.zendesk.com"
