"""Marshmallow fields shared by the configuration schemas of the core and of adapters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError, fields

__all__ = ["IdString"]


class IdString(fields.Field[str]):
    """An id written as text or as a whole number (YAML reads ``12345`` as an int); always text."""

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ValidationError("Must be text or a whole number.")
        text = str(value).strip()
        if not text:
            raise ValidationError("Must not be empty.")
        return text
