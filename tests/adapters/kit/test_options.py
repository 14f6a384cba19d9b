"""Typed options: the schema and the JSON Schema follow from one frozen dataclass."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

import pytest
from marshmallow import ValidationError, validate

from connector.adapters import IdString, option
from connector.adapters.kit.options import options_schema
from connector.jsonschema import object_schema


@dataclass(frozen=True)
class Budget:
    requests_per_10s: int = option(90, validate=validate.Range(min=1))


@dataclass(frozen=True)
class CrmOptions:
    api_token: str = option(help="The API token of an admin user.")
    base_url: str = "https://api.example.invalid"
    pipeline: str | None = option(None, field=IdString())
    mode: Literal["fast", "safe"] = "safe"
    read_timeout: float = 30.0
    enabled: bool = True
    stages: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    budget: Budget = field(default_factory=Budget)


def load(document: dict[str, object]) -> CrmOptions:
    loaded = options_schema(CrmOptions)().load(document)
    assert isinstance(loaded, CrmOptions)
    return loaded


def test_loading_gives_the_dataclass_with_its_defaults() -> None:
    assert load({"api_token": "t"}) == CrmOptions(api_token="t")


def test_every_kind_of_field_is_validated_and_converted() -> None:
    loaded = load(
        {
            "api_token": "t",
            "pipeline": 42,
            "mode": "fast",
            "read_timeout": "2.5",
            "stages": ["a", "b"],
            "labels": {"x": "y"},
            "budget": {"requests_per_10s": 5},
        }
    )
    assert loaded.pipeline == "42" and loaded.mode == "fast" and loaded.read_timeout == 2.5
    assert loaded.stages == ("a", "b") and loaded.labels == {"x": "y"}
    assert loaded.budget == Budget(5)


@pytest.mark.parametrize(
    ("document", "key"),
    [
        ({}, "api_token"),
        ({"api_token": "t", "surely_a_typo": 1}, "surely_a_typo"),
        ({"api_token": "t", "mode": "reckless"}, "mode"),
        ({"api_token": "t", "budget": {"requests_per_10s": 0}}, "budget"),
        ({"api_token": "t", "budget": {"other": 1}}, "budget"),
        ({"api_token": "t", "read_timeout": None}, "read_timeout"),
    ],
)
def test_problems_are_reported_by_key(document: dict[str, object], key: str) -> None:
    with pytest.raises(ValidationError) as caught:
        load(document)
    assert key in caught.value.messages


def test_the_json_schema_has_types_defaults_enums_and_help() -> None:
    schema = object_schema(options_schema(CrmOptions)())
    properties = schema["properties"]
    assert schema["required"] == ["api_token"] and schema["additionalProperties"] is False
    assert properties["api_token"]["description"] == "The API token of an admin user."
    assert properties["base_url"] == {"type": "string", "default": "https://api.example.invalid"}
    assert properties["mode"]["enum"] == ["fast", "safe"]
    assert properties["budget"]["properties"]["requests_per_10s"]["anyOf"][0]["minimum"] == 1
    assert properties["stages"]["type"] == "array"


def test_a_policy_key_cannot_be_an_option() -> None:
    @dataclass(frozen=True)
    class Shadowing:
        mapping: str = "mine.yaml"

    with pytest.raises(TypeError, match="not an option"):
        options_schema(Shadowing)


def test_options_must_be_a_frozen_dataclass() -> None:
    @dataclass
    class Mutable:
        token: str = ""

    with pytest.raises(TypeError, match="frozen"):
        options_schema(Mutable)
