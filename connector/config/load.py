"""Load the YAML configuration: ``${ENV}`` secrets, validation of every section, all errors at once.

`load_config` either returns a complete, typed `Config` or raises `ConfigError` listing every
problem with the file and the key path where it is, so ``sipgate-crm check-config`` can show them
all in one go and the service refuses to start on any of them.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
from pathlib import Path
from typing import Any

import yaml
from marshmallow import (
    EXCLUDE,
    RAISE,
    Schema,
    ValidationError,
    fields,
    validate,
    validates,
    validates_schema,
)

from connector.adapters.registry import AdapterNotFound, adapter_class
from connector.config.policy import POLICY_KEYS, Defaults, TargetAbilities, load_policy
from connector.config.sections import (
    ROLES,
    AlertChannel,
    AlertsConfig,
    Config,
    ConsoleConfig,
    ConsoleUser,
    QueueConfig,
    RetentionConfig,
    ServerConfig,
    StorageConfig,
    TargetConfig,
)
from connector.problems import ConfigError, ConfigProblem, problems_from_messages

__all__ = ["ENV_CONFIG", "load_config", "load_storage_config", "parse_config", "resolve_sqlite_url"]

ENV_CONFIG = "SIPGATE_CRM_CONFIG"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

# --- schemas --------------------------------------------------------------------------------


def _cidr(value: str) -> None:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError as exc:
        raise ValidationError(f"{value!r} is not an IP address or CIDR network.") from exc


def _vcon_key(value: Any) -> None:
    from connector.vcon.sign import load_key

    try:
        load_key(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc


def _host_port(value: str) -> None:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValidationError("Must be HOST:PORT, e.g. 127.0.0.1:9464.")


class _ServerSchema(Schema):
    class Meta:
        unknown = RAISE

    webhook_path = fields.String(
        load_default="/webhooks/sipgate",
        validate=validate.Regexp(
            r"^/[A-Za-z0-9._~/-]*[^/]$", error="Must start with / and not end with /."
        ),
        metadata={
            "description": (
                "Path of the webhook (without the secret); register "
                "https://YOUR-HOST<webhook_path>/<secret> in sipgate."
            )
        },
    )
    secret = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(min=16),
        metadata={
            "description": (
                "Shared secret (at least 16 characters) sipgate must send as the last "
                "path segment or as 'Authorization: Bearer <secret>'; keep it in the "
                "environment: ${SIPGATE_WEBHOOK_SECRET}."
            )
        },
    )
    allowed_ips = fields.List(
        fields.String(validate=_cidr),
        load_default=list,
        metadata={
            "description": (
                "Addresses or CIDR networks webhooks are accepted from (sipgate: "
                "217.116.118.254, 212.9.46.32); empty: anyone."
            )
        },
    )
    trusted_proxies = fields.Integer(
        load_default=0,
        validate=validate.Range(min=0, max=10),
        metadata={
            "description": (
                "How many reverse proxies in front append to X-Forwarded-For (0: the "
                "TCP peer is the client); never more than you run."
            )
        },
    )
    proxy_addresses = fields.List(
        fields.String(validate=_cidr),
        load_default=["127.0.0.1", "::1"],
        metadata={
            "description": (
                "Addresses or CIDR networks of those proxies; X-Forwarded-For counts "
                "only on connections from them."
            )
        },
    )
    max_body_bytes = fields.Integer(
        load_default=5 * 1024 * 1024,
        validate=validate.Range(min=1024, max=100 * 1024 * 1024),
        metadata={
            "description": (
                "Largest accepted webhook body in bytes; larger bodies are answered 413"
                " (nginx's client_max_body_size must be at least this)."
            )
        },
    )
    bind = fields.String(
        load_default="127.0.0.1:8000",
        metadata={
            "description": (
                "HOST:PORT gunicorn listens on for webhooks, the console and the health"
                " checks (`web --bind` overrides it)."
            )
        },
    )
    workers = fields.Integer(
        load_default=4,
        validate=validate.Range(min=1, max=64),
        metadata={"description": "gunicorn worker processes (about two per core)."},
    )
    threads = fields.Integer(
        load_default=4,
        validate=validate.Range(min=1, max=64),
        metadata={
            "description": (
                "Threads per gunicorn process (1: sync workers, where a slow client "
                "holds a whole process)."
            )
        },
    )
    body_timeout_seconds = fields.Float(
        load_default=10.0,
        validate=validate.Range(min=0.5, max=600),
        metadata={
            "description": (
                "A body still arriving after this many seconds is answered 408, so slow"
                " clients hold no thread."
            )
        },
    )
    timeout_seconds = fields.Integer(
        load_default=30,
        validate=validate.Range(min=1),
        metadata={"description": "The longest a request or a graceful stop may take, in seconds."},
    )
    metrics_token = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(min=16),
        metadata={
            "description": (
                "Bearer token (at least 16 characters) GET /metrics requires when set: "
                "${SIPGATE_CRM_METRICS_TOKEN}."
            )
        },
    )
    metrics_directory = fields.String(
        load_default="data/metrics",
        metadata={
            "description": (
                "Folder of prometheus-client's multiprocess files (web/ and worker/ "
                "below it, emptied at each start)."
            )
        },
    )
    metrics_bind = fields.String(
        load_default=None,
        allow_none=True,
        validate=_host_port,
        metadata={
            "description": (
                "HOST:PORT of a second listener that serves only /metrics (e.g. "
                "127.0.0.1:9464); server.bind then answers /metrics with 404."
            )
        },
    )

    vcon_keys = fields.List(
        fields.Raw(validate=_vcon_key),
        load_default=list,
        metadata={
            "description": (
                "Public keys (JWK objects or PEM text) a signed vCon's signature must verify "
                "with; empty: signed vCons are refused."
            )
        },
    )
    vcon_require_signature = fields.Boolean(
        load_default=False,
        metadata={
            "description": "Refuse unsigned vCons (422); needs at least one key in vcon_keys."
        },
    )

    @validates_schema
    def _keys_for_signatures(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("vcon_require_signature") and not data.get("vcon_keys"):
            raise ValidationError(
                "Requiring signed vCons needs at least one key in vcon_keys.",
                "vcon_require_signature",
            )

    @validates_schema
    def _metrics_port_of_its_own(self, data: dict[str, Any], **_: Any) -> None:
        bind, metrics = data.get("bind", ""), data.get("metrics_bind")
        if metrics and bind.rpartition(":")[2] == metrics.rpartition(":")[2]:
            raise ValidationError("Must use another port than server.bind.", "metrics_bind")


def _url(value: str) -> None:
    if "://" not in value:
        raise ValidationError("Must be a URL such as sqlite:///data/connector.db.")
    if value.startswith("sqlite:") and not value.startswith("sqlite:///"):
        raise ValidationError("SQLite URLs have three slashes: sqlite:///data/connector.db.")


class _StorageSchema(Schema):
    class Meta:
        unknown = RAISE

    url = fields.String(
        load_default="sqlite:///data/connector.db",
        validate=_url,
        metadata={
            "description": (
                "The ledger's database: sqlite:///FILE (relative to this file) or "
                "postgresql+psycopg://USER:${PGPASSWORD}@HOST/DB."
            )
        },
    )


class _QueueSchema(Schema):
    class Meta:
        unknown = RAISE

    url = fields.String(
        load_default="sqlite:///data/queue.db",
        validate=_url,
        metadata={
            "description": (
                "The delivery queue: sqlite:///FILE (default), redis://HOST:6379/0 with"
                " several worker hosts, or memory:// for tests."
            )
        },
    )
    workers = fields.Integer(
        load_default=2,
        validate=validate.Range(min=1, max=64),
        metadata={"description": "Delivery threads per worker process."},
    )
    lease_seconds = fields.Integer(
        load_default=15,
        validate=validate.Range(min=2),
        metadata={
            "description": (
                "A delivery whose worker stopped renewing its lease for this many "
                "seconds goes to another worker (crash recovery time)."
            )
        },
    )
    poll_interval_seconds = fields.Float(
        load_default=1.0,
        validate=validate.Range(min=0.05),
        metadata={
            "description": (
                "The longest the worker waits before looking in the ledger for "
                "deliveries that are due, in seconds."
            )
        },
    )
    requeue_after_seconds = fields.Integer(
        load_default=300,
        validate=validate.Range(min=1),
        metadata={
            "description": (
                "A queue message still unprocessed after this many seconds, while "
                "others wait, is sent again."
            )
        },
    )
    retry_base_seconds = fields.Float(
        load_default=30.0,
        validate=validate.Range(min=0.01),
        metadata={
            "description": (
                "First retry delay; doubled per attempt (with jitter) up to retry_max_seconds."
            )
        },
    )
    retry_max_seconds = fields.Float(
        load_default=3600.0,
        validate=validate.Range(min=0.01),
        metadata={"description": "Longest delay between two retries, in seconds."},
    )
    give_up_after_hours = fields.Float(
        load_default=72.0,
        validate=validate.Range(min=0.001),
        metadata={
            "description": (
                "A delivery still failing this many hours after the call arrived is "
                "marked dead (and alerted)."
            )
        },
    )

    @validates("url")
    def _known_scheme(self, value: str, **_: Any) -> None:
        if not value.startswith(("sqlite:///", "redis://", "rediss://", "memory://")):
            raise ValidationError("Must be sqlite:///FILE, redis://HOST:PORT/DB or memory://.")


class _RetentionSchema(Schema):
    class Meta:
        unknown = RAISE

    content_days = fields.Integer(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=1),
        metadata={
            "description": (
                "Days after which a call's content (raw body: transcript, summary, key "
                "points, action items, headline) is removed once every delivery is "
                "finished; unset: kept."
            )
        },
    )
    metadata_days = fields.Integer(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=1),
        metadata={
            "description": (
                "Days after which the whole call row and its delivery states are "
                "removed (at least content_days); unset: kept."
            )
        },
    )
    interval_seconds = fields.Integer(
        load_default=3600,
        validate=validate.Range(min=1),
        metadata={"description": "How often the worker applies the retention, in seconds."},
    )

    @validates_schema
    def _content_goes_first(self, data: dict[str, Any], **_: Any) -> None:
        content, meta = data.get("content_days"), data.get("metadata_days")
        if meta is not None and (content is None or content > meta):
            raise ValidationError(
                "Must be at least content_days (content goes no later than the call).",
                "metadata_days",
            )


class _AlertChannelSchema(Schema):
    class Meta:
        unknown = RAISE

    type = fields.String(
        required=True,
        validate=validate.OneOf(["slack", "teams", "http", "email"]),
        metadata={
            "description": (
                "slack or teams (incoming webhook), http (any endpoint, JSON) or email "
                "(SMTP with STARTTLS)."
            )
        },
    )
    url = fields.String(
        load_default=None,
        validate=validate.URL(schemes={"http", "https"}, require_tld=False),
        metadata={"description": "The webhook URL of a slack, teams or http channel."},
    )
    headers = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        load_default=dict,
        metadata={
            "description": (
                "Extra HTTP headers of an http channel (e.g. Authorization: Bearer ${TOKEN})."
            )
        },
    )
    host = fields.String(
        load_default=None, metadata={"description": "SMTP server of an email channel."}
    )
    port = fields.Integer(
        load_default=587,
        validate=validate.Range(min=1, max=65535),
        metadata={"description": "SMTP port of an email channel (STARTTLS, usually 587)."},
    )
    username = fields.String(
        load_default=None,
        metadata={"description": "SMTP login of an email channel; unset: no login."},
    )
    password = fields.String(
        load_default=None,
        metadata={"description": "SMTP password of an email channel: ${SMTP_PASSWORD}."},
    )
    sender = fields.Email(
        load_default=None, metadata={"description": "From address of an email channel."}
    )
    recipients = fields.List(
        fields.Email(),
        load_default=list,
        metadata={"description": "To addresses of an email channel."},
    )
    ca_file = fields.String(
        load_default=None,
        metadata={
            "description": (
                "PEM file of the certificates to trust for the SMTP server instead of "
                "the system's (relative to this file)."
            )
        },
    )
    timeout_seconds = fields.Float(
        load_default=10.0,
        validate=validate.Range(min=0.1),
        metadata={"description": "How long one send may take, in seconds."},
    )

    @validates_schema
    def _complete(self, data: dict[str, Any], **_: Any) -> None:
        if data["type"] != "email":
            if not data.get("url"):
                raise ValidationError("Required for a webhook channel.", "url")
            return
        for key in ("host", "sender", "recipients"):
            if not data.get(key):
                raise ValidationError("Required for an e-mail channel.", key)


class _AlertsSchema(Schema):
    class Meta:
        unknown = RAISE

    channels = fields.List(
        fields.Nested(_AlertChannelSchema),
        load_default=list,
        metadata={"description": "Where alerts go: one message per channel and check."},
    )
    review_queue_above = fields.Integer(
        load_default=None,
        allow_none=True,
        validate=validate.Range(min=0),
        metadata={
            "description": (
                "Alert when more deliveries than this await review (unmatched or "
                "ambiguous calls); unset: never."
            )
        },
    )
    interval_seconds = fields.Integer(
        load_default=60,
        validate=validate.Range(min=1),
        metadata={"description": "How often the worker looks for something to report, in seconds."},
    )
    min_interval_seconds = fields.Integer(
        load_default=300,
        validate=validate.Range(min=0),
        metadata={
            "description": (
                "At least this many seconds between two messages; what comes up "
                "meanwhile goes out together."
            )
        },
    )


class _TargetSchema(Schema):
    class Meta:
        unknown = EXCLUDE  # the adapter's own schema validates the rest

    name = fields.String(
        required=True,
        validate=validate.Regexp(r"^[a-z0-9][a-z0-9_-]{0,62}$", error="Use a-z, 0-9, _ and -."),
    )
    type = fields.String(required=True)


class _RootSchema(Schema):
    class Meta:
        unknown = RAISE

    server = fields.Dict(load_default=dict)
    storage = fields.Dict(load_default=dict)
    queue = fields.Dict(load_default=dict)
    retention = fields.Dict(load_default=dict)
    alerts = fields.Dict(load_default=dict)
    targets = fields.List(fields.Dict(), required=True)
    log_level = fields.String(
        load_default="INFO", validate=validate.OneOf(["DEBUG", "INFO", "WARNING", "ERROR"])
    )
    log_format = fields.String(load_default="text", validate=validate.OneOf(["text", "json"]))
    defaults = fields.Dict(load_default=dict)
    console = fields.Dict(load_default=dict)


def _password_hash(value: str) -> None:
    if not value.startswith(("scrypt:", "pbkdf2:")):
        raise ValidationError(
            "Must be a hash from `sipgate-crm console hash-password` (scrypt:… or pbkdf2:…)."
        )


class _ConsoleUserSchema(Schema):
    class Meta:
        unknown = RAISE

    name = fields.String(
        required=True,
        validate=validate.Regexp(r"^[A-Za-z0-9._@-]{1,64}$", error="Use letters, digits, . _ @ -."),
        metadata={"description": "Login name (letters, digits, . _ @ -)."},
    )
    password_hash = fields.String(
        required=True,
        validate=_password_hash,
        metadata={
            "description": (
                "Password hash from `sipgate-crm console hash-password` (scrypt:... or pbkdf2:...)."
            )
        },
    )
    role = fields.String(
        load_default="viewer",
        validate=validate.OneOf(ROLES),
        metadata={
            "description": (
                "viewer (calls and states) or operator (also transcripts, replays and "
                "review decisions)."
            )
        },
    )


class _ConsoleSchema(Schema):
    class Meta:
        unknown = RAISE

    enabled = fields.Boolean(
        load_default=False, metadata={"description": "Serve the sales-ops console under /console/."}
    )
    secret_key = fields.String(
        load_default="",
        validate=validate.Length(max=500),
        metadata={
            "description": (
                "Key that signs the session cookies, at least 32 characters: "
                "${SIPGATE_CONSOLE_KEY}."
            )
        },
    )
    users = fields.List(
        fields.Nested(_ConsoleUserSchema),
        load_default=list,
        metadata={"description": "The console's accounts."},
    )
    session_hours = fields.Float(
        load_default=12.0,
        validate=validate.Range(min=0.1, max=720),
        metadata={"description": "How long a login lasts, in hours."},
    )
    login_attempts = fields.Integer(
        load_default=5,
        validate=validate.Range(min=1, max=100),
        metadata={
            "description": (
                "Failed logins allowed per user name (four times that per address) "
                "within login_window_minutes."
            )
        },
    )
    login_window_minutes = fields.Integer(
        load_default=15,
        validate=validate.Range(min=1),
        metadata={"description": "The window failed logins are counted in, in minutes."},
    )
    links = fields.Dict(
        keys=fields.String(),
        values=fields.Dict(keys=fields.String(), values=fields.String()),
        load_default=dict,
        metadata={
            "description": (
                "Per target, what links to its CRM records need (HubSpot: portal_id, "
                "domain; Salesforce targets link to their instance_url)."
            )
        },
    )

    @validates_schema
    def _usable(self, data: dict[str, Any], **_: Any) -> None:
        if not data["enabled"]:
            return
        if len(data["secret_key"]) < 32:
            raise ValidationError(
                "At least 32 characters (e.g. ${SIPGATE_CONSOLE_KEY}); it signs the sessions.",
                "secret_key",
            )
        if not data["users"]:
            raise ValidationError("Configure at least one user.", "users")
        names = [u["name"] for u in data["users"]]
        if len(set(names)) != len(names):
            raise ValidationError("User names must be unique.", "users")


def _region(value: str) -> None:
    import phonenumbers

    if value not in phonenumbers.SUPPORTED_REGIONS:
        raise ValidationError(f"{value!r} is not a region code such as DE, AT or CH.")


def _timezone(value: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"{value!r} is not a time zone such as Europe/Berlin.") from exc


class _DefaultsSchema(Schema):
    class Meta:
        unknown = RAISE

    region = fields.String(
        load_default="DE",
        validate=_region,
        metadata={
            "description": (
                "Region code (DE, AT, CH, ...) for numbers written without a country code."
            )
        },
    )
    timezone = fields.String(
        load_default="Europe/Berlin",
        validate=_timezone,
        metadata={
            "description": (
                "Time zone of local call times in templates, activity dates and due dates."
            )
        },
    )
    language = fields.String(
        load_default="en",
        validate=validate.OneOf(["en", "de"]),
        metadata={
            "description": "Labels, date and duration formats of the shipped templates: en or de."
        },
    )


# --- loading --------------------------------------------------------------------------------


def _substitute_env(node: Any, path: str, file: str, problems: list[ConfigProblem]) -> Any:
    """Replace ``${VAR}`` / ``${VAR:-default}`` in every string, recording unset variables."""
    if isinstance(node, dict):
        return {
            k: _substitute_env(v, f"{path}.{k}" if path else str(k), file, problems)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_substitute_env(v, f"{path}[{i}]", file, problems) for i, v in enumerate(node)]
    if isinstance(node, str):

        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            value = os.environ.get(name)
            if default is not None and not value:  # like the shell: unset or empty
                return default
            if value is None:
                problems.append(
                    ConfigProblem(file, path, f"Environment variable {name} is not set.")
                )
                return ""
            return value

        return _ENV_REF.sub(replace, node)
    return node


def resolve_sqlite_url(url: str, base: Path) -> str:
    """Make a relative ``sqlite:///path`` absolute against `base` (the config file's folder)."""
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return url
    rest = url[len(prefix) :]
    if not rest or rest == ":memory:" or rest.startswith("/"):
        return url
    path, sep, query = rest.partition("?")
    return f"{prefix}{(base / path).resolve()}{sep}{query}"


def _target_options(
    raw: dict[str, Any],
    index: int,
    file: str,
    base: Path,
    defaults: Defaults,
    problems: list[ConfigProblem],
) -> TargetConfig | None:

    where = f"targets[{index}]"
    try:
        head = _TargetSchema().load(raw)
    except ValidationError as exc:
        problems.extend(problems_from_messages(file, where, exc.messages))
        return None
    try:
        cls = adapter_class(head["type"])
    except AdapterNotFound as exc:
        problems.append(ConfigProblem(file, f"{where}.type", str(exc)))
        return None
    options = {k: v for k, v in raw.items() if k not in ("name", "type") and k not in POLICY_KEYS}
    abilities = TargetAbilities(cls.searchable_objects, cls.creatable_objects, cls.writable_fields)
    policy = load_policy(raw, where, file, base, defaults, abilities, problems, cls.default_mapping)
    try:
        loaded = cls.config_schema().load(options)
    except ValidationError as exc:
        problems.extend(problems_from_messages(file, where, exc.messages))
        return None
    if policy is None:
        return None
    return TargetConfig(
        name=head["name"],
        type=head["type"],
        options=_resolved(loaded, base),
        policy=policy,
        searches_by_name=cls.supports_name_search,
    )


def _resolved(options: Any, base: Path) -> Any:
    """`options` with relative ``sqlite:///`` URLs and `Path` values resolved against the
    configuration's folder (typed options are replaced, options of schema-only adapters
    updated)."""
    values = (
        {f.name: getattr(options, f.name) for f in dataclasses.fields(options)}
        if dataclasses.is_dataclass(options)
        else options
    )
    resolved: dict[str, Any] = {
        key: resolve_sqlite_url(value, base)
        for key, value in values.items()
        if isinstance(value, str) and value.startswith("sqlite:///")
    }
    resolved.update({k: base / v for k, v in values.items() if isinstance(v, Path)})
    if dataclasses.is_dataclass(options) and not isinstance(options, type):
        return dataclasses.replace(options, **resolved)
    options.update(resolved)
    return options


def parse_config(document: Any, file: str = "<config>", base: Path | None = None) -> Config:
    """Validate an already decoded YAML document; see `load_config`."""
    base = base or Path.cwd()
    problems: list[ConfigProblem] = []
    if not isinstance(document, dict):
        raise ConfigError([ConfigProblem(file, "", "The file must contain a YAML mapping.")])
    document = _substitute_env(document, "", file, problems)
    # Unknown top-level keys are reported, and the rest is still checked: all problems at once.
    known = set(_RootSchema().fields)
    for key in document:
        if key not in known:
            problems.append(ConfigProblem(file, str(key), "Unknown key (a typo?)."))
    try:
        root = _RootSchema().load({k: v for k, v in document.items() if k in known})
    except ValidationError as exc:
        problems.extend(problems_from_messages(file, "", exc.messages))
        raise ConfigError(problems) from exc

    sections: dict[str, dict[str, Any]] = {}
    for key, schema in (
        ("server", _ServerSchema),
        ("storage", _StorageSchema),
        ("queue", _QueueSchema),
        ("retention", _RetentionSchema),
        ("alerts", _AlertsSchema),
    ):
        try:
            sections[key] = schema().load(root[key])
        except ValidationError as exc:
            problems.extend(problems_from_messages(file, key, exc.messages))

    console = ConsoleConfig()
    try:
        loaded = _ConsoleSchema().load(root["console"])
        console = ConsoleConfig(
            **{**loaded, "users": tuple(ConsoleUser(**u) for u in loaded["users"])}
        )
    except ValidationError as exc:
        problems.extend(problems_from_messages(file, "console", exc.messages))
    try:
        defaults = Defaults(**_DefaultsSchema().load(root["defaults"]))
    except ValidationError as exc:
        problems.extend(problems_from_messages(file, "defaults", exc.messages))
        defaults = Defaults()
    targets: list[TargetConfig] = []
    seen: set[str] = set()
    if not root["targets"]:
        problems.append(ConfigProblem(file, "targets", "Configure at least one target."))
    for index, raw in enumerate(root["targets"]):
        target = _target_options(raw, index, file, base, defaults, problems)
        if target is None:
            continue
        if target.name in seen:
            problems.append(
                ConfigProblem(
                    file, f"targets[{index}].name", f"Duplicate target name {target.name!r}."
                )
            )
        seen.add(target.name)
        targets.append(target)

    if problems:
        # A value whose ${VARIABLE} is unset fails its own checks too; report only the cause.
        unset = {p.path for p in problems if p.message.startswith("Environment variable")}
        raise ConfigError(
            [p for p in problems if p.path not in unset or p.message.startswith("Environment")]
        )

    server = sections["server"]
    storage = sections["storage"]
    queue = sections["queue"]
    return Config(
        server=ServerConfig(
            **{
                **server,
                **{
                    key: tuple(ipaddress.ip_network(ip, strict=False) for ip in server[key])
                    for key in ("allowed_ips", "proxy_addresses")
                },
                "metrics_directory": (base / server["metrics_directory"]).resolve(),
                "vcon_keys": tuple(server["vcon_keys"]),
            }
        ),
        storage=StorageConfig(url=resolve_sqlite_url(storage["url"], base)),
        queue=QueueConfig(**{**queue, "url": resolve_sqlite_url(queue["url"], base)}),
        targets=tuple(targets),
        log_level=root["log_level"],
        log_format=root["log_format"],
        source=Path(file) if file != "<config>" else None,
        defaults=defaults,
        retention=RetentionConfig(**sections["retention"]),
        console=console,
        alerts=_alerts(sections["alerts"], base),
    )


def _alerts(section: dict[str, Any], base: Path) -> AlertsConfig:
    channels = tuple(
        AlertChannel(
            **{
                **channel,
                "recipients": tuple(channel["recipients"]),
                "ca_file": (base / channel["ca_file"]).resolve() if channel["ca_file"] else None,
            }
        )
        for channel in section["channels"]
    )
    return AlertsConfig(**{**section, "channels": channels})


def _read_document(path: str | os.PathLike[str] | None) -> tuple[Any, Path]:
    chosen = Path(path or os.environ.get(ENV_CONFIG) or "config.yaml")
    name = str(chosen)
    try:
        text = chosen.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(
            [ConfigProblem(name, "", f"Cannot read the file: {exc.strerror}.")]
        ) from exc
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError([ConfigProblem(name, where, f"Not valid YAML: {exc}")]) from exc
    return document, chosen


def load_storage_config(path: str | os.PathLike[str] | None = None) -> StorageConfig:
    """Read only the ``storage`` section (for commands that work on the ledger alone).

    Only that section's ``${ENV}`` references must be set: `status` and `replay` run where the
    CRM secrets are not in the environment.
    """
    document, chosen = _read_document(path)
    name = str(chosen)
    section = document.get("storage", {}) if isinstance(document, dict) else None
    problems: list[ConfigProblem] = []
    section = _substitute_env(section if section is not None else {}, "storage", name, problems)
    if problems:
        raise ConfigError(problems)
    try:
        loaded = _StorageSchema().load(section)
    except ValidationError as exc:
        raise ConfigError(problems_from_messages(name, "storage", exc.messages)) from exc
    return StorageConfig(url=resolve_sqlite_url(loaded["url"], chosen.resolve().parent))


def load_defaults(path: str | os.PathLike[str] | None = None) -> Defaults:
    """Read only the ``defaults`` section (region, time zone, language), with no ``${ENV}``
    reference of any other section needed, like `load_storage_config`."""
    document, chosen = _read_document(path)
    section = document.get("defaults", {}) if isinstance(document, dict) else None
    try:
        return Defaults(**_DefaultsSchema().load(section if section is not None else {}))
    except ValidationError as exc:
        raise ConfigError(problems_from_messages(str(chosen), "defaults", exc.messages)) from exc


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and validate the configuration file.

    The file is `path`, else ``$SIPGATE_CRM_CONFIG``, else ``config.yaml`` in the current folder.
    Relative SQLite paths resolve against the file's folder.
    """
    document, chosen = _read_document(path)
    config = parse_config(document, str(chosen), chosen.resolve().parent)
    return dataclasses.replace(config, source=chosen.resolve())
