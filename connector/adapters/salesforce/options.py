"""The options of a ``salesforce`` target, declared once as frozen dataclasses.

``auth`` takes exactly one login flow (`_AUTH_FLOWS`), recognised by the keys it gives; it is
loaded with ``method`` set to the flow's name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from marshmallow import ValidationError, fields, validate

from connector.adapters import IdString, option
from connector.adapters.kit.options import OptionsSchema

SEARCH_OBJECTS: Final = ("contact", "lead", "account", "person_account")
WHAT_RULES: Final = ("account", "open_opportunity", "none")

_API_NAME_RE: Final = r"^[A-Za-z][A-Za-z0-9_]*$"


def _https_url(value: str) -> None:
    validate.URL(schemes={"https"}, require_tld=False)(value)


def _instance_url(value: str) -> None:
    _https_url(value)
    if urlsplit(value).path not in ("", "/") or urlsplit(value).query:
        raise ValidationError("Give only https://HOST (your My Domain URL), without a path.")


def _my_domain(value: str) -> None:
    if value.lower() in ("login", "test"):
        raise ValidationError(
            "The client credentials flow needs your My Domain (e.g. acme.my), not "
            f"{value!r}: Salesforce refuses it on login.salesforce.com."
        )
    if not re.fullmatch(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*", value):
        raise ValidationError("Must be the part before .salesforce.com, e.g. acme.my.")


_API_NAME = validate.Regexp(
    _API_NAME_RE, error="Must be a Salesforce API name, e.g. Phone_E164__c."
)


class _ClientCredentialsAuth(OptionsSchema):
    """OAuth 2.0 client credentials of a connected app (recommended)."""

    client_id = fields.String(
        required=True,
        validate=validate.Length(min=1),
        metadata={"description": "The connected app's consumer key: ${SF_CLIENT_ID}."},
    )
    client_secret = fields.String(
        required=True,
        validate=validate.Length(min=1),
        metadata={"description": "The connected app's consumer secret: ${SF_CLIENT_SECRET}."},
    )
    domain = fields.String(
        load_default=None,
        allow_none=True,
        validate=_my_domain,
        metadata={"description": "Your My Domain, the part before .salesforce.com (e.g. acme.my)."},
    )
    token_url = fields.String(
        load_default=None,
        allow_none=True,
        validate=_https_url,
        metadata={
            "description": (
                "The token endpoint; unset: that of domain, else of instance_url "
                "(/services/oauth2/token)."
            )
        },
    )


class _JwtBearerAuth(OptionsSchema):
    """OAuth 2.0 JWT bearer flow: a connected app's certificate, on behalf of a user."""

    consumer_key = fields.String(
        required=True,
        validate=validate.Length(min=1),
        metadata={"description": "The connected app's consumer key."},
    )
    username = fields.String(
        required=True,
        validate=validate.Length(min=1),
        metadata={"description": "The Salesforce user the connector acts as."},
    )
    private_key_file = fields.String(
        required=True,
        validate=validate.Length(min=1),
        metadata={
            "description": "PEM file of the private key whose certificate the connected app holds."
        },
    )
    audience = fields.String(
        load_default="https://login.salesforce.com",
        validate=_https_url,
        metadata={
            "description": (
                "https://login.salesforce.com, or https://test.salesforce.com for sandboxes."
            )
        },
    )
    token_url = fields.String(
        load_default=None,
        allow_none=True,
        validate=_https_url,
        metadata={
            "description": "The token endpoint, if not the audience's /services/oauth2/token."
        },
    )


class _SessionAuth(OptionsSchema):
    """An existing session id (tools, tests)."""

    session_id = fields.String(
        required=True,
        validate=validate.Length(min=1),
        metadata={"description": "An existing session id (access token) of the instance."},
    )


class _PasswordAuth(OptionsSchema):
    """SOAP username/password login (being retired by Salesforce; logs a warning)."""

    username = fields.String(
        required=True,
        validate=validate.Length(min=1),
        metadata={"description": "The Salesforce user's login name."},
    )
    password = fields.String(
        required=True,
        validate=validate.Length(min=1),
        metadata={"description": "The user's password: ${SF_PASSWORD}."},
    )
    security_token = fields.String(
        load_default="",
        metadata={"description": "The user's security token (appended to the password)."},
    )
    domain = fields.String(
        load_default="login",
        validate=validate.Length(min=1),
        metadata={"description": "login, test (sandboxes) or your My Domain (e.g. acme.my)."},
    )


#: (method, schema, keys that identify it) of the supported logins.
_AUTH_FLOWS: Final[tuple[tuple[str, type[OptionsSchema], frozenset[str]], ...]] = (
    ("client_credentials", _ClientCredentialsAuth, frozenset({"client_id", "client_secret"})),
    ("jwt_bearer", _JwtBearerAuth, frozenset({"consumer_key", "private_key_file", "audience"})),
    ("session", _SessionAuth, frozenset({"session_id"})),
    ("password", _PasswordAuth, frozenset({"password", "security_token"})),
)
_AUTH_HELP: Final = (
    "Give exactly one login: {client_id, client_secret, domain} (OAuth client credentials), "
    "{consumer_key, username, private_key_file} (OAuth JWT bearer), {session_id} (an existing "
    "session) or {username, password, security_token} (SOAP login, being retired by Salesforce)."
)


class _AuthField(fields.Field[dict[str, Any]]):
    """The ``auth`` option: one of the login flows, returned with ``method`` set."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            raise ValidationError(_AUTH_HELP)
        flows = [(name, schema) for name, schema, keys in _AUTH_FLOWS if keys & set(value)]
        if len(flows) != 1:
            raise ValidationError(_AUTH_HELP)
        name, schema = flows[0]
        loaded: dict[str, Any] = schema().load(value)
        return {"method": name, **loaded}


@dataclass(frozen=True)
class CaseOptions:
    """A Case for calls on one of `channels` (ids or names)."""

    channels: tuple[str, ...] = option(
        field=fields.List(IdString(), validate=validate.Length(min=1)),
        help="sipgate channel names or ids whose calls also get a Case.",
    )
    record_type: str | None = option(
        None,
        validate=validate.Regexp(
            r"^012[A-Za-z0-9]{12}([A-Za-z0-9]{3})?$", error="A RecordType id."
        ),
        help="RecordTypeId of the Case (012...); unset: the user's default.",
    )
    status: str | None = option(
        None,
        validate=validate.Length(min=1),
        help="Status of a new Case; unset: the org's default.",
    )
    origin: str = option(
        "Phone", validate=validate.Length(min=1), help="Origin picklist value of the Case."
    )


@dataclass(frozen=True)
class LeadDefaults:
    """``LastName`` and ``Company`` of a new caller's Lead when the mapping sets none."""

    last_name: str = option(
        "Unknown caller", validate=validate.Length(1, 80), help="LastName of a new Lead."
    )
    company: str = option(
        "Unknown company", validate=validate.Length(1, 255), help="Company of a new Lead."
    )


@dataclass(frozen=True)
class SalesforceOptions:
    """Options of a ``salesforce`` target (see the package docstring for what they change)."""

    instance_url: str = option(
        validate=_instance_url, help="Your My Domain URL, e.g. https://acme.my.salesforce.com."
    )
    auth: Mapping[str, str | None] = option(
        field=_AuthField(metadata={"schemas": tuple(schema for _, schema, _ in _AUTH_FLOWS)}),
        help=_AUTH_HELP,
    )
    api_version: str = option(
        "59.0",
        validate=validate.Regexp(r"^\d{2,3}\.0$", error="An API version such as 59.0."),
        help="The REST API version, e.g. 59.0.",
    )
    connect_timeout: float = option(
        5.0, validate=validate.Range(min=0.1, max=120), help="Seconds to connect to Salesforce."
    )
    read_timeout: float = option(
        30.0,
        validate=validate.Range(min=0.1, max=600),
        help="Seconds to wait for Salesforce's answer.",
    )
    match_field: str | None = option(
        None,
        validate=_API_NAME,
        help="An indexed custom field holding +E.164 (e.g. Phone_E164__c): exact SOQL matches "
        "instead of SOSL, with no search index lag.",
    )
    search_objects: tuple[str, ...] = option(
        ("contact", "lead"),
        field=fields.List(
            fields.String(validate=validate.OneOf(SEARCH_OBJECTS)),
            validate=validate.Length(min=1),
        ),
        help="The object types searched (as far as the mapping's matching.objects names them).",
    )
    external_id_field: str | None = option(
        None,
        validate=_API_NAME,
        help="A Task External ID field (e.g. Sipgate_Call_Id__c): call Tasks are upserted on it.",
    )
    what_rule: Literal["account", "open_opportunity", "none"] = option(
        "account",
        help="The Task's WhatId: the contact's account, its most recent open Opportunity, or none.",
    )
    case: CaseOptions | None = option(
        None, help="A Case for calls on some channels (e.g. support lines)."
    )
    lead_defaults: LeadDefaults = option(
        default_factory=LeadDefaults, help="LastName and Company of a new caller's Lead."
    )

    @property
    def base_url(self) -> str:
        """`instance_url` without a trailing slash."""
        return self.instance_url.rstrip("/")

    @property
    def searched(self) -> tuple[str, ...]:
        """`search_objects` without repetitions, in their order."""
        return tuple(dict.fromkeys(self.search_objects))


@dataclass(frozen=True)
class PolicyNeeds:
    """What the adapter needs of its target's delivery policy (nothing without a policy).

    `owners`: the owners the policy names (where → User id or e-mail), which `check` verifies;
    `task_fields`: the Task fields the mapping writes, each with the constant it writes ("" when
    rendered per call), checked against the org's restricted picklists; `lead_fields`: the fields
    a new caller's Lead gets; `matching_objects`: the object types matching names (searched as
    far as ``search_objects`` allows); `on_no_match` (`check` asks for Lead create rights only
    for ``create_lead``); `timezone`: the zone of the call's ``ActivityDate`` when the mapping
    does not set it.
    """

    owners: Mapping[str, str] = field(default_factory=dict)
    task_fields: Mapping[str, str] = field(default_factory=dict)
    lead_fields: tuple[str, ...] = ()
    matching_objects: tuple[str, ...] = ()
    on_no_match: str = "log_unmatched"
    timezone: str | None = None
