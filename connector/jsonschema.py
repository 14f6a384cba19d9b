"""JSON Schemas of the configuration and mapping files, derived from their marshmallow schemas.

Editors (VS Code with the YAML extension, JetBrains IDEs) use them for completion, validation and
help on hover: ``sipgate-crm schema config > config.schema.json``. Every key carries a
``description`` (marshmallow ``metadata={"description": ...}``, or ``option(help=...)`` of an
adapter's options); `undescribed` names the keys that lack one, and the tests require none.
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, missing, validate

from connector.adapters import adapter_class, available_adapters
from connector.config.load import (
    _AlertsSchema,
    _ConsoleSchema,
    _DefaultsSchema,
    _QueueSchema,
    _RetentionSchema,
    _ServerSchema,
    _StorageSchema,
)
from connector.config.policy import MappingSchema, TargetPolicySchema

__all__ = ["config_schema", "field_schema", "mapping_file_schema", "object_schema", "undescribed"]

DRAFT = "https://json-schema.org/draft/2020-12/schema"
_ENV = {"type": "string", "pattern": r"\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}"}


def field_schema(field: fields.Field[Any]) -> dict[str, Any]:
    """The JSON Schema of one marshmallow field (types, enums, ranges, defaults).

    A field whose ``metadata["schemas"]`` names marshmallow schema classes is described as an
    object of one of them (a custom field that loads several shapes, or a free-form mapping
    that is merged into such objects later); each schema's docstring describes its shape.
    """
    out: dict[str, Any]
    shapes = field.metadata.get("schemas")
    if shapes:
        if len(shapes) == 1:
            out = object_schema(shapes[0]())
        else:
            out = {
                "oneOf": [
                    {"description": (shape.__doc__ or "").strip(), **object_schema(shape())}
                    for shape in shapes
                ]
            }
    elif isinstance(field, fields.Nested):
        nested = field.schema
        out = object_schema(nested)
    elif isinstance(field, fields.List):
        out = {"type": "array", "items": field_schema(field.inner)}
    elif isinstance(field, fields.Dict):
        out = {"type": "object"}
        if field.value_field is not None:
            out["additionalProperties"] = field_schema(field.value_field)
    elif isinstance(field, fields.Boolean):
        out = {"type": "boolean"}
    elif isinstance(field, fields.Integer):
        out = {"type": "integer"}
    elif isinstance(field, fields.Float | fields.Number):
        out = {"type": "number"}
    elif isinstance(field, fields.String):
        out = {"type": "string"}
    else:
        out = {}
    validators = field.validators if hasattr(field, "validators") else []
    for validator in validators:
        if isinstance(validator, validate.OneOf):
            out["enum"] = list(validator.choices)
        elif isinstance(validator, validate.Range):
            if validator.min is not None:
                out["minimum"] = validator.min
            if validator.max is not None:
                out["maximum"] = validator.max
        elif isinstance(validator, validate.Length) and validator.min is not None:
            out["minLength"] = validator.min
    default = field.load_default
    if default is not None and not callable(default) and default is not missing:
        out["default"] = default
    if field.allow_none and "type" in out:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = [*out["enum"], None]
    elif field.allow_none and "oneOf" in out:
        out["oneOf"] = [*out["oneOf"], {"type": "null"}]
    if out.get("type") in ("integer", "number", "boolean", ["integer", "null"]):
        # Numbers and switches may also come from the environment: ${NAME}.
        out = {"anyOf": [out, _ENV]}
    if field.metadata.get("description"):
        out = {"description": field.metadata["description"], **out}
    return out


def object_schema(schema: Schema) -> dict[str, Any]:
    """The JSON Schema of a marshmallow schema's objects (unknown keys not allowed)."""
    properties = {
        (field.data_key or name): field_schema(field) for name, field in schema.fields.items()
    }
    required = [(field.data_key or name) for name, field in schema.fields.items() if field.required]
    out: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        out["required"] = required
    return out


def undescribed(schema: Any, where: str = "") -> list[str]:
    """The key paths in the JSON Schema `schema` whose property has no ``description``.

    A path names a target's keys by its type (``targets[hubspot].rate_limit``), array items by
    ``[]`` and the values of a free-form mapping by ``.*``.
    """
    if not isinstance(schema, dict):
        return []
    missing: list[str] = []
    for key, sub in (schema.get("properties") or {}).items():
        path = f"{where}.{key}" if where else key
        if not (isinstance(sub, dict) and sub.get("description")):
            missing.append(path)
        missing += undescribed(sub, path)
    if isinstance(schema.get("items"), dict):
        missing += undescribed(schema["items"], f"{where}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        missing += undescribed(schema["additionalProperties"], f"{where}.*")
    for alternative in (*schema.get("anyOf", ()), *schema.get("oneOf", ())):
        kind = (alternative.get("properties") or {}).get("type", {}).get("const")
        missing += undescribed(
            alternative, f"{where.removesuffix('[]')}[{kind}]" if kind else where
        )
    return missing


def _target_schema(type_name: str) -> dict[str, Any]:
    options = object_schema(adapter_class(type_name).config_schema())
    policy = object_schema(TargetPolicySchema())
    return {
        "type": "object",
        "description": f"A {type_name} target.",
        "properties": {
            "name": {
                "type": "string",
                "pattern": "^[a-z0-9][a-z0-9_-]{0,62}$",
                "description": "The target's unique name (a-z, 0-9, _ and -), used in status, "
                "metrics and alerts.",
            },
            "type": {"const": type_name, "description": "The adapter that delivers the calls."},
            # The policy keys last: a target entry's policy keys are never the adapter's.
            **options["properties"],
            **policy["properties"],
        },
        "required": ["name", "type", *options.get("required", [])],
        "additionalProperties": False,
    }


_SECTIONS: tuple[tuple[str, Schema, str], ...] = (
    ("server", _ServerSchema(), "How the web side listens and whom it accepts webhooks from."),
    ("storage", _StorageSchema(), "The ledger: every accepted call and its delivery state."),
    ("queue", _QueueSchema(), "The delivery queue, the worker's threads and the retry policy."),
    ("retention", _RetentionSchema(), "How long the ledger keeps call content and call rows."),
    ("alerts", _AlertsSchema(), "Messages about dead deliveries, parked targets, review queue."),
    ("defaults", _DefaultsSchema(), "Region, time zone and language where nothing else says."),
    ("console", _ConsoleSchema(), "The sales-ops console under /console/ (off unless enabled)."),
)


def config_schema() -> dict[str, Any]:
    """The JSON Schema of the configuration file, with one target shape per installed adapter."""
    return {
        "$schema": DRAFT,
        "title": "sipgate-crm-connector configuration",
        "type": "object",
        "properties": {
            **{
                key: {"description": text, **object_schema(schema)}
                for key, schema, text in _SECTIONS
            },
            "log_level": {
                "enum": ["DEBUG", "INFO", "WARNING", "ERROR"],
                "default": "INFO",
                "description": "The least severe log lines written (to stderr).",
            },
            "log_format": {
                "enum": ["text", "json"],
                "default": "text",
                "description": "text, or json: one JSON object per line for log shippers.",
            },
            "targets": {
                "type": "array",
                "minItems": 1,
                "description": "Where each call is delivered: one entry per CRM or database.",
                "items": {"oneOf": [_target_schema(name) for name in sorted(available_adapters())]},
            },
        },
        "required": ["targets"],
        "additionalProperties": False,
    }


def mapping_file_schema() -> dict[str, Any]:
    """The JSON Schema of a mapping file (``mappings/*.yaml``)."""
    return {
        "$schema": DRAFT,
        "title": "sipgate-crm-connector mapping",
        **object_schema(MappingSchema()),
    }
