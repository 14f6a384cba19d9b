"""Per-target delivery policy: filters, matching, owners, tasks, transcript and field templates.

Sales ops write it in two places: a mapping file (field templates, limits, matching, tasks,
transcript mode; without one, the default mapping the target's adapter ships) and the target
entry in the configuration (``filters``, ``owners``, and any mapping key to override for this
target). `load_policy` merges them, validates everything, compiles and test-renders every
template, and reports every problem with its file and key path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import jinja2
import yaml
from marshmallow import RAISE, Schema, ValidationError, fields, validate

from connector.fields import IdString
from connector.phone import is_internal
from connector.problems import ConfigProblem, problems_from_messages
from connector.render.check import check_templates
from connector.render.locales import LANGUAGES
from connector.render.sandbox import compile_templates

__all__ = [
    "Defaults",
    "DeliveryPolicy",
    "Filters",
    "MatchingPolicy",
    "OwnerPolicy",
    "TargetAbilities",
    "TaskPolicy",
    "load_policy",
    "mapping_schema",
    "target_policy_schema",
]

TIE_BREAKS = ("most_recent", "owner", "all", "review")
NO_MATCH = ("skip", "create_contact", "create_lead", "log_unmatched", "review")
#: ``review`` holds a call for a person; after ``review_hours`` these apply instead.
FALLBACK_TIE_BREAKS = TIE_BREAKS[:-1]
FALLBACK_NO_MATCH = NO_MATCH[:-1]
TRANSCRIPT_MODES = ("off", "summary", "full")
PRIORITIES = ("low", "normal", "high")
TASK_OWNERS = ("call_owner", "fallback", "none")

#: Sample values of the ``record`` context variable, so templates using it pass the check.
SAMPLE_RECORD = {"record": {"id": "sample-1", "type": "contact", "name": "Erika Beispiel"}}


@dataclass(frozen=True)
class Defaults:
    """Service-wide defaults for numbers, times and language."""

    region: str = "DE"
    timezone: str = "Europe/Berlin"
    language: str = "en"


@dataclass(frozen=True)
class Filters:
    """Which calls a target takes; everything else is recorded as ``skipped`` with the reason."""

    channels_allow: tuple[str, ...] = ()
    channels_deny: tuple[str, ...] = ()
    directions: tuple[str, ...] = ("IN", "OUT")
    min_duration_seconds: float = 0.0
    skip_internal: bool = True
    own_numbers: tuple[str, ...] = ()
    skip_anonymous: bool = False
    blocked_numbers: tuple[str, ...] = ()


@dataclass(frozen=True)
class MatchingPolicy:
    """How the records to log a call on are chosen from the CRM's search hits."""

    objects: tuple[str, ...] = ()
    tie_break: str = "most_recent"
    on_no_match: str = "log_unmatched"
    review_hours: float = 24.0
    fallback_tie_break: str = "most_recent"
    fallback_on_no_match: str = "log_unmatched"


@dataclass(frozen=True)
class OwnerPolicy:
    """sipgate user (``fullUserId`` or ``userId``) → CRM owner id or e-mail address."""

    users: Mapping[str, str] = field(default_factory=dict)
    fallback: str | None = None


@dataclass(frozen=True)
class TaskPolicy:
    """Turning action items into CRM tasks."""

    enabled: bool = True
    due_in_business_days: int = 2
    priority: str = "normal"
    owner: str = "call_owner"
    subject: jinja2.Template | None = None
    body: jinja2.Template | None = None


@dataclass(frozen=True)
class TargetAbilities:
    """What a target's adapter can do, as far as its policy is concerned (see `Adapter`)."""

    searchable_objects: tuple[str, ...] = ()
    creatable_objects: tuple[str, ...] = ()
    #: The call record fields it writes; empty: not declared, any name is taken.
    writable_fields: frozenset[str] = frozenset()


@dataclass(frozen=True)
class DeliveryPolicy:
    """Everything the pipeline needs to turn a call into one target's `DeliveryJob`."""

    mapping_file: str | None = None
    language: str = "en"
    defaults: Defaults = field(default_factory=Defaults)
    transcript: str = "summary"
    fields: Mapping[str, jinja2.Template] = field(default_factory=dict)
    new_record: Mapping[str, jinja2.Template] = field(default_factory=dict)
    limits: Mapping[str, int] = field(default_factory=dict)
    filters: Filters = field(default_factory=Filters)
    matching: MatchingPolicy = field(default_factory=MatchingPolicy)
    owners: OwnerPolicy = field(default_factory=OwnerPolicy)
    tasks: TaskPolicy = field(default_factory=TaskPolicy)


# --- schemas ----------------------------------------------------------------------------------


class _TranscriptMode(fields.String):
    """``off | summary | full``; YAML reads an unquoted ``off`` as false, which means off too."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if value is False:
            value = "off"
        return super()._deserialize(value, attr, data, **kwargs)


class _Strict(Schema):
    class Meta:
        unknown = RAISE


class _ChannelsSchema(_Strict):
    allow = fields.List(
        fields.String(),
        load_default=list,
        metadata={"description": "sipgate channel names or ids this target takes; empty: all."},
    )
    deny = fields.List(
        fields.String(),
        load_default=list,
        metadata={"description": "sipgate channel names or ids this target skips."},
    )


class FiltersSchema(_Strict):
    """``filters:`` of a target."""

    channels = fields.Nested(
        _ChannelsSchema,
        load_default=lambda: _ChannelsSchema().load({}),
        metadata={"description": "Which sipgate channels' calls this target takes."},
    )
    directions = fields.List(
        fields.String(validate=validate.OneOf(["IN", "OUT"])),
        load_default=lambda: ["IN", "OUT"],
        metadata={"description": "Call directions this target takes: IN, OUT."},
    )
    min_duration_seconds = fields.Float(
        load_default=0.0,
        validate=validate.Range(min=0),
        metadata={"description": "Calls shorter than this many seconds are skipped."},
    )
    skip_internal = fields.Boolean(
        load_default=True,
        metadata={
            "description": (
                "Skip calls whose remote party has 5 digits or fewer or is one of own_numbers."
            )
        },
    )
    own_numbers = fields.List(
        fields.String(),
        load_default=list,
        metadata={"description": "Your own numbers (any format): calls between them are internal."},
    )
    skip_anonymous = fields.Boolean(
        load_default=False, metadata={"description": "Skip calls from withheld numbers."}
    )
    blocked_numbers = fields.List(
        fields.String(),
        load_default=list,
        metadata={"description": "Numbers (any format) whose calls are skipped."},
    )


class OwnersSchema(_Strict):
    """``owners:`` of a target."""

    users = fields.Dict(
        keys=IdString(),
        values=IdString(),
        load_default=dict,
        metadata={
            "description": (
                "sipgate user (fullUserId such as 1234567w0, or userId such as w0) to "
                "CRM owner id or e-mail address."
            )
        },
    )
    fallback = IdString(
        load_default=None,
        allow_none=True,
        metadata={"description": "CRM owner id or e-mail address for calls of unmapped users."},
    )


class MatchingSchema(_Strict):
    """``matching:`` of a mapping."""

    objects = fields.List(
        fields.String(),
        load_default=None,
        allow_none=True,
        metadata={
            "description": (
                "Record types searched in this order (e.g. contact, company); the first"
                " type with a hit wins. Unset: the adapter's."
            )
        },
    )
    tie_break = fields.String(
        load_default="most_recent",
        validate=validate.OneOf(TIE_BREAKS),
        metadata={
            "description": (
                "Several records match: most_recent, owner (the call owner's), all, or "
                "review (a person decides)."
            )
        },
    )
    on_no_match = fields.String(
        load_default="log_unmatched",
        validate=validate.OneOf(NO_MATCH),
        metadata={
            "description": (
                "No record matches: skip, create_contact, create_lead, log_unmatched or"
                " review (a person decides)."
            )
        },
    )
    review_hours = fields.Float(
        load_default=24.0,
        validate=validate.Range(min=0.01, max=24 * 30),
        metadata={
            "description": (
                "How long a held delivery waits for a person before the fallback applies, in hours."
            )
        },
    )
    fallback_tie_break = fields.String(
        load_default="most_recent",
        validate=validate.OneOf(FALLBACK_TIE_BREAKS),
        metadata={
            "description": "tie_break when review_hours have passed: most_recent, owner or all."
        },
    )
    fallback_on_no_match = fields.String(
        load_default="log_unmatched",
        validate=validate.OneOf(FALLBACK_NO_MATCH),
        metadata={
            "description": (
                "on_no_match when review_hours have passed: skip, create_contact, "
                "create_lead or log_unmatched."
            )
        },
    )


class TasksSchema(_Strict):
    """``tasks:`` of a mapping."""

    enabled = fields.Boolean(
        load_default=True, metadata={"description": "Turn the call's action items into CRM tasks."}
    )
    due_in_business_days = fields.Integer(
        load_default=2,
        validate=validate.Range(min=0, max=60),
        metadata={"description": "Tasks are due this many business days after the call."},
    )
    priority = fields.String(
        load_default="normal",
        validate=validate.OneOf(PRIORITIES),
        metadata={"description": "Priority of the tasks: low, normal or high."},
    )
    owner = fields.String(
        load_default="call_owner",
        validate=validate.OneOf(TASK_OWNERS),
        metadata={
            "description": "Who owns the tasks: call_owner, fallback (owners.fallback) or none."
        },
    )
    subject = fields.String(
        load_default="{{ item | truncate_to(200) }}",
        metadata={"description": "Template of a task's subject ({{ item }} is the action item)."},
    )
    body = fields.String(
        load_default="{{ item }}",
        metadata={"description": "Template of a task's body ({{ item }} is the action item)."},
    )


class MappingSchema(_Strict):
    """A mapping file (also the keys a target may override inline)."""

    language = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.OneOf(LANGUAGES),
        metadata={
            "description": (
                "Labels, date and duration formats of the templates: en or de; unset: "
                "defaults.language."
            )
        },
    )
    transcript = _TranscriptMode(
        load_default="summary",
        validate=validate.OneOf(TRANSCRIPT_MODES),
        metadata={
            "description": (
                "Where the transcript goes: off, summary (an overflow record such as a "
                "note) or full (into the fields whose templates use it)."
            )
        },
    )
    matching = fields.Nested(
        MatchingSchema,
        load_default=lambda: MatchingSchema().load({}),
        metadata={
            "description": (
                "How the caller's CRM record is found, and what happens when none or several are."
            )
        },
    )
    tasks = fields.Nested(
        TasksSchema,
        load_default=lambda: TasksSchema().load({}),
        metadata={"description": "Turning the call's action items into CRM tasks."},
    )
    fields_ = fields.Dict(
        data_key="fields",
        keys=fields.String(),
        values=fields.String(),
        load_default=dict,
        metadata={
            "description": (
                "The call record's fields, each a Jinja template (README: Template context)."
            )
        },
    )
    new_record = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        load_default=dict,
        metadata={
            "description": "Fields of a record created for an unknown caller, each a template."
        },
    )
    limits = fields.Dict(
        keys=fields.String(),
        values=fields.Integer(validate=validate.Range(min=1)),
        load_default=dict,
        metadata={
            "description": (
                "Lower a field's length limit (characters) below the CRM's; longer text"
                " is cut with [...]."
            )
        },
    )


class TargetPolicySchema(_Strict):
    """The policy keys of a target entry (the adapter validates the rest)."""

    mapping = fields.String(
        load_default=None,
        allow_none=True,
        metadata={
            "description": (
                "Mapping file next to this configuration or in its mappings/ folder; "
                "unset: the adapter's default mapping."
            )
        },
    )
    filters = fields.Nested(
        FiltersSchema,
        load_default=lambda: FiltersSchema().load({}),
        metadata={
            "description": (
                "Which calls this target takes; the others are recorded as skipped with the reason."
            )
        },
    )
    owners = fields.Nested(
        OwnersSchema,
        load_default=lambda: OwnersSchema().load({}),
        metadata={"description": "Which CRM owner a sipgate user's calls get."},
    )
    language = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.OneOf(LANGUAGES),
        metadata={"description": "Overrides the mapping's language: en or de."},
    )
    transcript = _TranscriptMode(
        load_default=None,
        allow_none=True,
        validate=validate.OneOf(TRANSCRIPT_MODES),
        metadata={"description": "Overrides the mapping's transcript mode: off, summary or full."},
    )
    matching = fields.Dict(
        load_default=None,
        allow_none=True,
        metadata={
            "schemas": (MatchingSchema,),
            "description": (
                "Overrides keys of the mapping's matching (objects, tie_break, on_no_match, ...)."
            ),
        },
    )
    tasks = fields.Dict(
        load_default=None,
        allow_none=True,
        metadata={
            "schemas": (TasksSchema,),
            "description": "Overrides keys of the mapping's tasks (enabled, priority, owner, ...).",
        },
    )
    limits = fields.Dict(
        load_default=None,
        allow_none=True,
        metadata={"description": "Overrides and adds to the mapping's field length limits."},
    )


#: Keys of a target entry that belong to the policy, not to the adapter.
POLICY_KEYS = frozenset(TargetPolicySchema().fields)


def mapping_schema() -> Schema:
    """The schema of a mapping file."""
    return MappingSchema()


def target_policy_schema() -> Schema:
    """The schema of a target entry's policy keys."""
    return TargetPolicySchema()


# --- loading ----------------------------------------------------------------------------------


def _find_mapping(name: str, base: Path) -> Path | None:
    candidates = [base / name, base / "mappings" / name]
    return next((c for c in candidates if c.is_file()), None)


def _read_mapping(source: Traversable, problems: list[ConfigProblem]) -> dict[str, Any] | None:
    """The decoded mapping file `source`; problems are appended, ``None`` if unusable."""
    try:
        loaded = yaml.safe_load(source.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        problems.append(ConfigProblem(str(source), "", f"Not valid YAML: {exc}"))
        return None
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(ConfigProblem(str(source), "", f"Cannot read the file: {exc}"))
        return None
    if not isinstance(loaded, dict):
        problems.append(ConfigProblem(str(source), "", "A mapping file must be a mapping."))
        return None
    return loaded


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(dict(merged[key]), value)
        else:
            merged[key] = value
    return merged


def _templates(
    sources: Mapping[str, str],
    language: str,
    file: str,
    path: str,
    problems: list[ConfigProblem],
    extra: Mapping[str, Any] = SAMPLE_RECORD,
) -> dict[str, jinja2.Template]:
    found = check_templates(sources, language, extra=extra)
    for problem in found:
        problems.append(ConfigProblem(file, f"{path}.{problem.field}", problem.message))
    compiled, _ = compile_templates(sources)
    return compiled


def _load_leniently(
    schema: Schema, data: Mapping[str, Any], report: Callable[[Any], None]
) -> dict[str, Any]:
    """`schema` loads `data`; keys with errors are `report`-ed and replaced by their defaults.

    So one wrong key never hides the problems of the others (all problems in one run).
    """
    try:
        loaded: dict[str, Any] = schema.load(data)
        return loaded
    except ValidationError as exc:
        report(exc.messages)
        failed = set(exc.messages) if isinstance(exc.messages, dict) else set(data)
        return _load_leniently(
            schema, {k: v for k, v in data.items() if k not in failed}, lambda _: None
        )


def _number_problems(
    filters: Mapping[str, Any], region: str, file: str, where: str
) -> list[ConfigProblem]:
    """Entries of ``own_numbers`` and ``blocked_numbers`` that are no phone numbers."""
    found: list[ConfigProblem] = []
    for key in ("own_numbers", "blocked_numbers"):
        for index, value in enumerate(filters[key]):
            # A number is recognised as itself exactly when the filters can compare it.
            if not is_internal(value, (value,), max_internal_digits=0, default_region=region):
                found.append(
                    ConfigProblem(
                        file,
                        f"{where}.filters.{key}[{index}]",
                        f"{value!r} is not a phone number (read with defaults.region {region}).",
                    )
                )
    return found


def load_policy(
    raw_target: Mapping[str, Any],
    where: str,
    config_file: str,
    base: Path,
    defaults: Defaults,
    abilities: TargetAbilities,
    problems: list[ConfigProblem],
    default_mapping: Traversable | None = None,
) -> DeliveryPolicy | None:
    """The delivery policy of one target entry; problems are appended, ``None`` if unusable.

    `abilities` are what the target's adapter can do (search, create, write);
    `default_mapping` is the adapter's own mapping, used when the entry names none. Every
    problem of the entry and its mapping is reported, also when some key is wrong.
    """
    before = len(problems)
    raw = {k: v for k, v in raw_target.items() if k in POLICY_KEYS}
    target = _load_leniently(
        TargetPolicySchema(),
        raw,
        lambda messages: problems.extend(problems_from_messages(config_file, where, messages)),
    )
    problems.extend(_number_problems(target["filters"], defaults.region, config_file, where))

    mapping_doc: dict[str, Any] = {}
    mapping_file = config_file
    mapping_path = where
    source: Traversable | None = default_mapping
    if target["mapping"]:
        source = _find_mapping(target["mapping"], base)
        if source is None:
            problems.append(
                ConfigProblem(
                    config_file,
                    f"{where}.mapping",
                    f"Mapping file {target['mapping']!r} not found (looked next to the "
                    "configuration and in its mappings/ folder).",
                )
            )
            return None
    if source is not None:
        loaded = _read_mapping(source, problems)
        if loaded is None:
            return None
        mapping_file, mapping_path, mapping_doc = str(source), "", loaded

    overrides = {
        key: target[key]
        for key in ("language", "transcript", "matching", "tasks", "limits")
        if target[key] is not None
    }
    prefix = f"{mapping_path}." if mapping_path else ""

    def locate(path: str) -> tuple[str, str]:
        """The file and key path of `path` (``matching.on_no_match``) in the merged mapping:
        the target entry when it overrides that key, else the mapping file."""
        top, _, rest = path.partition(".")
        overridden = overrides.get(top)
        if overridden is not None and (
            not rest or not isinstance(overridden, Mapping) or rest.split(".")[0] in overridden
        ):
            return config_file, f"{where}.{path}"
        return mapping_file, f"{prefix}{path}"

    def report_mapping(messages: Any) -> None:
        for problem in problems_from_messages(mapping_file, "", messages):
            problems.append(ConfigProblem(*locate(problem.path.lstrip(".")), problem.message))

    mapping = _load_leniently(MappingSchema(), _merge(mapping_doc, overrides), report_mapping)

    language = mapping["language"] or defaults.language
    call_fields = _templates(
        mapping["fields_"], language, mapping_file, f"{prefix}fields", problems
    )
    new_record = _templates(
        mapping["new_record"], language, mapping_file, f"{prefix}new_record", problems
    )
    tasks = mapping["tasks"]
    task_templates = (
        _templates(
            {"subject": tasks["subject"], "body": tasks["body"]},
            language,
            mapping_file,
            f"{prefix}tasks",
            problems,
            {**SAMPLE_RECORD, "item": "Send the offer to the customer."},
        )
        if tasks["enabled"]
        else {}
    )
    problems.extend(_field_problems(mapping, abilities, locate))
    matching = mapping["matching"]
    # Not set: everything the target can search; an empty list: no matching at all.
    object_types = abilities.searchable_objects
    objects = tuple(object_types if matching["objects"] is None else matching["objects"])
    unknown = [o for o in objects if o not in object_types]
    if unknown and object_types:
        problems.append(
            ConfigProblem(
                *locate("matching.objects"),
                f"This target cannot search {', '.join(unknown)}; it searches "
                f"{', '.join(object_types)}.",
            )
        )
    creates = matching["on_no_match"].removeprefix("create_")
    if matching["on_no_match"].startswith("create_") and creates not in abilities.creatable_objects:
        can = ", ".join(abilities.creatable_objects) or "no records"
        problems.append(
            ConfigProblem(
                *locate("matching.on_no_match"),
                f"This target cannot create {creates} records (it creates {can}).",
            )
        )
    if len(problems) > before:
        return None
    filters = target["filters"]
    owners = target["owners"]
    return DeliveryPolicy(
        mapping_file=mapping_file if source is not None else None,
        language=language,
        defaults=defaults,
        transcript=mapping["transcript"],
        fields=call_fields,
        new_record=new_record,
        limits=mapping["limits"],
        filters=Filters(
            channels_allow=tuple(filters["channels"]["allow"]),
            channels_deny=tuple(filters["channels"]["deny"]),
            directions=tuple(filters["directions"]),
            min_duration_seconds=filters["min_duration_seconds"],
            skip_internal=filters["skip_internal"],
            own_numbers=tuple(filters["own_numbers"]),
            skip_anonymous=filters["skip_anonymous"],
            blocked_numbers=tuple(filters["blocked_numbers"]),
        ),
        matching=MatchingPolicy(
            objects=objects, **{k: v for k, v in matching.items() if k != "objects"}
        ),
        owners=OwnerPolicy(users=dict(owners["users"]), fallback=owners["fallback"]),
        tasks=TaskPolicy(
            enabled=tasks["enabled"],
            due_in_business_days=tasks["due_in_business_days"],
            priority=tasks["priority"],
            owner=tasks["owner"],
            subject=task_templates.get("subject"),
            body=task_templates.get("body"),
        ),
    )


def _field_problems(
    mapping: Mapping[str, Any],
    abilities: TargetAbilities,
    locate: Callable[[str], tuple[str, str]],
) -> list[ConfigProblem]:
    """``fields`` the adapter does not write, and ``limits`` of fields the mapping does not write.

    A limit applies to a mapped field only, so any other key is a typo, whatever the adapter.
    """
    found: list[ConfigProblem] = []
    writable = abilities.writable_fields
    for name in mapping["fields_"]:
        if writable and name not in writable:
            found.append(
                ConfigProblem(
                    *locate(f"fields.{name}"),
                    f"This target does not write a field {name!r}; it writes "
                    f"{', '.join(sorted(writable))}.",
                )
            )
    for name in mapping["limits"]:
        if name not in mapping["fields_"]:
            found.append(
                ConfigProblem(
                    *locate(f"limits.{name}"),
                    f"{name!r} is not one of the mapping's fields "
                    f"({', '.join(mapping['fields_']) or 'none'}); a limit applies to those.",
                )
            )
    return found
