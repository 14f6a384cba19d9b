"""The README stays true: it documents every template variable and every CLI command."""

from __future__ import annotations

from pathlib import Path

from connector.cli import main
from connector.render.context import VARIABLES

README = (Path(__file__).parents[1] / "README.md").read_text()


def test_every_template_variable_is_documented() -> None:
    missing = [v.name for v in VARIABLES if f"| `{v.name}` |" not in README]
    assert missing == []


def test_every_command_is_documented() -> None:
    missing = [name for name in main.commands if f"`sipgate-crm {name}" not in README]  # type: ignore[attr-defined]
    assert missing == []


def test_the_quick_start_is_the_two_commands() -> None:
    assert "make run" in README and "make test" in README and "send-example" in README
