"""Configuration problems: what is wrong, in which file, at which key path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["ConfigError", "ConfigProblem", "problems_from_messages"]


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with the configuration or a mapping file, and where."""

    file: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}: {self.path}" if self.path else self.file
        return f"{where}: {self.message}"


class ConfigError(Exception):
    """The configuration cannot be used; `problems` lists everything that is wrong."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def problems_from_messages(file: str, prefix: str, messages: Any) -> list[ConfigProblem]:
    """Flatten marshmallow's nested error messages into problems with key paths."""
    out: list[ConfigProblem] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            if isinstance(key, int):
                path = f"{prefix}[{key}]"
            elif key == "_schema":
                path = prefix
            else:
                path = f"{prefix}.{key}" if prefix else str(key)
            out.extend(problems_from_messages(file, path, value))
    elif isinstance(messages, list):
        for message in messages:
            out.extend(problems_from_messages(file, prefix, message))
    else:
        text = str(messages)
        if text == "Unknown field.":
            text = "Unknown key (a typo?)."
        out.append(ConfigProblem(file, prefix, text))
    return out
