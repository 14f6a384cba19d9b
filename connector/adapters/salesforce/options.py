"""The options of a ``salesforce`` target: marshmallow schemas and their validators.

``auth`` takes exactly one login flow (`_AUTH_FLOWS`), recognised by the keys it gives;
`SalesforceOptions` loads it with ``method`` set to the flow's name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from marshmallow import ValidationError, fields, post_load, validate

from connector.adapters.base import IdString, OptionsSchema

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
    client_id = fields.String(required=True, validate=validate.Length(min=1))
    client_secret = fields.String(required=True, validate=validate.Length(min=1))
    domain = fields.String(load_default=None, allow_none=True, validate=_my_domain)
    token_url = fields.String(load_default=None, allow_none=True, validate=_https_url)


class _JwtBearerAuth(OptionsSchema):
    consumer_key = fields.String(required=True, validate=validate.Length(min=1))
    username = fields.String(required=True, validate=validate.Length(min=1))
    private_key_file = fields.String(required=True, validate=validate.Length(min=1))
    audience = fields.String(load_default="https://login.salesforce.com", validate=_https_url)
    token_url = fields.String(load_default=None, allow_none=True, validate=_https_url)


class _SessionAuth(OptionsSchema):
    session_id = fields.String(required=True, validate=validate.Length(min=1))


class _PasswordAuth(OptionsSchema):
    username = fields.String(required=True, validate=validate.Length(min=1))
    password = fields.String(required=True, validate=validate.Length(min=1))
    security_token = fields.String(load_default="")
    domain = fields.String(load_default="login", validate=validate.Length(min=1))


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


class _CaseOptions(OptionsSchema):
    channels = fields.List(IdString(), required=True, validate=validate.Length(min=1))
    record_type = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Regexp(
            r"^012[A-Za-z0-9]{12}([A-Za-z0-9]{3})?$", error="A RecordType id."
        ),
    )
    status = fields.String(load_default=None, allow_none=True, validate=validate.Length(min=1))
    origin = fields.String(load_default="Phone", validate=validate.Length(min=1))


class _LeadDefaults(OptionsSchema):
    last_name = fields.String(load_default="Unknown caller", validate=validate.Length(1, 80))
    company = fields.String(load_default="Unknown company", validate=validate.Length(1, 255))


class SalesforceOptions(OptionsSchema):
    """Options of a ``salesforce`` target (see the package docstring for what they change)."""

    instance_url = fields.String(required=True, validate=_instance_url)
    api_version = fields.String(
        load_default="59.0",
        validate=validate.Regexp(r"^\d{2,3}\.0$", error="An API version such as 59.0."),
    )
    auth = _AuthField(required=True)
    connect_timeout = fields.Float(load_default=5.0, validate=validate.Range(min=0.1, max=120))
    read_timeout = fields.Float(load_default=30.0, validate=validate.Range(min=0.1, max=600))
    match_field = fields.String(load_default=None, allow_none=True, validate=_API_NAME)
    search_objects = fields.List(
        fields.String(validate=validate.OneOf(SEARCH_OBJECTS)),
        load_default=lambda: ["contact", "lead"],
        validate=validate.Length(min=1),
    )
    external_id_field = fields.String(load_default=None, allow_none=True, validate=_API_NAME)
    what_rule = fields.String(load_default="account", validate=validate.OneOf(WHAT_RULES))
    case = fields.Nested(_CaseOptions, load_default=None, allow_none=True)
    lead_defaults = fields.Nested(
        _LeadDefaults,
        load_default=lambda: {"last_name": "Unknown caller", "company": "Unknown company"},
    )
    mapping = fields.String(load_default=None, allow_none=True)
    owners = fields.Dict(
        keys=IdString(), values=fields.String(validate=validate.Length(min=1)), load_default=dict
    )

    @post_load
    def _normalise(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        data["instance_url"] = data["instance_url"].rstrip("/")
        data["search_objects"] = list(dict.fromkeys(data["search_objects"]))
        return data
