"""Every key of the JSON Schemas has a description, so editors show help on hover."""

from __future__ import annotations

from dataclasses import dataclass

from connector.adapters import option
from connector.adapters.kit.options import options_schema
from connector.jsonschema import config_schema, mapping_file_schema, object_schema, undescribed

HINT = (
    "give these keys a description: metadata={'description': ...} on the marshmallow field, "
    "or option(..., help=...) in an adapter's options"
)


def test_every_key_of_the_configuration_schema_has_a_description() -> None:
    missing = undescribed(config_schema())
    assert missing == [], f"{HINT}: {', '.join(missing)}"


def test_every_key_of_the_mapping_file_schema_has_a_description() -> None:
    missing = undescribed(mapping_file_schema())
    assert missing == [], f"{HINT}: {', '.join(missing)}"


@dataclass(frozen=True)
class _Inner:
    depth: int = option(1, help="How deep.")
    width: int = 2


@dataclass(frozen=True)
class _Options:
    token: str = option(help="The token.")
    timeout: float = option(5.0)
    inner: _Inner = option(default_factory=_Inner, help="Nested options.")


def test_a_key_without_a_description_is_named_with_its_path() -> None:
    options = object_schema(options_schema(_Options)())
    assert undescribed(options) == ["timeout", "inner.width"]
    config = {
        "properties": {
            "targets": {
                "description": "Targets.",
                "items": {
                    "oneOf": [{"properties": {"type": {"const": "demo"}, **options["properties"]}}]
                },
            },
            "log_level": {"enum": ["INFO"]},
        }
    }
    assert undescribed(config) == [
        "targets[demo].type",
        "targets[demo].timeout",
        "targets[demo].inner.width",
        "log_level",
    ]


def test_numbers_from_the_environment_keep_their_description_on_top() -> None:
    server = config_schema()["properties"]["server"]["properties"]
    assert set(server["workers"]) == {"description", "anyOf"}
    assert "gunicorn" in server["workers"]["description"]
