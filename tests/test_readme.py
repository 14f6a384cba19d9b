"""The README stays true: the generated template-context table, every CLI command documented."""

from __future__ import annotations

from pathlib import Path

from connector.cli import main
from connector.render.context import reference_table

README = (Path(__file__).parents[1] / "README.md").read_text()
END_OF_CONTEXT_TABLE = "<!-- /template-context -->"


def test_the_template_context_table_is_the_generated_one() -> None:
    begin = "<!-- template-context: generated from connector/render/context.py"
    assert README.count(begin) == 1 and README.count(END_OF_CONTEXT_TABLE) == 1
    shown = README.split(begin, 1)[1].split("-->\n", 1)[1].split(END_OF_CONTEXT_TABLE, 1)[0]
    assert shown == reference_table(), (
        "The README's template-context table differs from connector.render.context; "
        "paste the output of `python -c 'from connector.render.context import reference_table; "
        'print(reference_table(), end="")\'` between the markers.'
    )


def test_every_command_is_documented() -> None:
    missing = [name for name in main.commands if f"`sipgate-crm {name}" not in README]  # type: ignore[attr-defined]
    assert missing == []


def test_the_quick_start_is_the_two_commands() -> None:
    assert "make run" in README and "make test" in README and "send-example" in README
