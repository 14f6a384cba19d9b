"""Typed options: an adapter declares a frozen dataclass once, the schemas follow from it.

``options_schema(MyOptions)`` is the marshmallow schema a target entry is validated with (unknown
keys rejected, every default taken from the dataclass), and loading with it gives a ``MyOptions``
instance; the configuration's JSON Schema is derived from the same schema. Field types map to
schema fields: ``str``, ``int``, ``float``, ``bool``, ``Literal[...]`` (one of the values),
``X | None``, ``tuple[X, ...]``, ``Mapping[str, X]``, ``Path`` (a file or folder; a relative one
is resolved against the configuration file's folder when the configuration is loaded) and nested
option dataclasses; `option` adds validators, a help text or a field of one's own (e.g.
`IdString`).
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

from marshmallow import RAISE, Schema, ValidationError, fields, post_load, validate

from connector.config.policy import POLICY_KEYS

__all__ = ["RESERVED_KEYS", "OptionsSchema", "option", "options_schema"]

#: Keys of a target entry that are not the adapter's: its name, type and the delivery policy.
RESERVED_KEYS = frozenset({"name", "type", *POLICY_KEYS})


class OptionsSchema(Schema):
    """Base for adapter option schemas: unknown keys are errors (they are usually typos)."""

    class Meta:
        unknown = RAISE


def option(
    default: Any = dataclasses.MISSING,
    *,
    default_factory: Callable[[], Any] | Any = dataclasses.MISSING,
    validate: Callable[[Any], Any] | None = None,
    field: fields.Field[Any] | None = None,
    help: str = "",
) -> Any:
    """A dataclass field of an options class: its `default` (or `default_factory`; neither:
    required), `validate` (a marshmallow validator), a schema `field` replacing the one derived
    from the type, and its `help`: the key's description in the JSON Schema, which editors show
    on hover. Give every option a `help`; the adapter contract suite
    (`connector.testing.AdapterContract`) fails naming each option without one."""
    metadata = {"validate": validate, "field": field, "help": help}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


class _Tuple(fields.List):  # type: ignore[type-arg]
    """A list in the file, a tuple in the options."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        return tuple(super()._deserialize(value, attr, data, **kwargs))


class _PathField(fields.String):
    """A path in the file, a `Path` in the options."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not text:
            raise ValidationError("Must not be empty.")
        return Path(text)


def _field_for(annotation: Any, where: str) -> tuple[fields.Field[Any], bool]:
    """The schema field of a type annotation and whether ``None`` is allowed."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1:
            raise TypeError(f"{where}: only X | None unions are options.")
        return _field_for(rest[0], where)[0], True
    if origin is Literal:
        return fields.Raw(validate=validate.OneOf(args)), False
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return _Tuple(_field_for(args[0], where)[0]), False
    if origin in (dict, Mapping):
        return fields.Dict(keys=fields.String(), values=_field_for(args[1], where)[0]), False
    if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
        return fields.Nested(options_schema(annotation)), False
    simple: dict[Any, type[fields.Field[Any]]] = {
        str: fields.String,
        bool: fields.Boolean,
        int: fields.Integer,
        float: fields.Float,
        Path: _PathField,
    }
    if annotation in simple:
        return simple[annotation](), False
    raise TypeError(f"{where}: {annotation!r} is not a type options can have.")


@functools.cache
def options_schema(options_type: type[Any]) -> type[OptionsSchema]:
    """The marshmallow schema of the frozen dataclass `options_type`; loading gives an instance."""
    if not (dataclasses.is_dataclass(options_type) and options_type.__dataclass_params__.frozen):  # type: ignore[attr-defined]
        raise TypeError(f"{options_type.__name__} must be a frozen dataclass.")
    hints = typing.get_type_hints(options_type)
    attrs: dict[str, Any] = {}
    for item in dataclasses.fields(options_type):
        where = f"{options_type.__name__}.{item.name}"
        if item.name in RESERVED_KEYS:
            raise TypeError(f"{where}: {item.name!r} is a key of the target entry, not an option.")
        derived, nullable = _field_for(hints[item.name], where)
        chosen: fields.Field[Any] = item.metadata.get("field") or derived
        if item.metadata.get("validate") is not None:
            chosen.validators = [*chosen.validators, item.metadata["validate"]]
        chosen.allow_none = nullable
        if item.default is not dataclasses.MISSING:
            chosen.load_default = item.default
        elif item.default_factory is not dataclasses.MISSING:
            chosen.load_default = item.default_factory
        else:
            chosen.required = True
        if item.metadata.get("help"):
            chosen.metadata = {**chosen.metadata, "description": item.metadata["help"]}
        attrs[item.name] = chosen

    def _build(self: Schema, data: dict[str, Any], **_: Any) -> Any:
        try:
            return options_type(**data)
        except (TypeError, ValueError) as exc:
            raise ValidationError(str(exc)) from exc

    attrs["_build"] = post_load(_build)
    attrs["__doc__"] = options_type.__doc__
    return type(f"{options_type.__name__}Schema", (OptionsSchema,), attrs)
