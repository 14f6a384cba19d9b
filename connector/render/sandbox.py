"""The sandbox field templates run in: environment, compiling and rendering.

Field values (a call's subject, a note body, a task title) are Jinja2 templates in the YAML
mapping files. They run in an `ImmutableSandboxedEnvironment` (no access to ``_``-prefixed or
internal attributes, no mutation of lists/dicts) with `StrictUndefined`, so that a typo is an
error instead of an empty CRM field. Everything that goes wrong is a `TemplateProblem` carrying
the field name.

Environment: ``trim_blocks``, ``lstrip_blocks``, no autoescaping (HTML bodies use the ``html``,
``bullets(style="html")`` and ``paragraphs_html`` filters), no trailing newline kept; ``None``
prints as the empty string; rendered values are stripped of surrounding whitespace; an inline
``{{ a if b }}`` without ``else`` renders as the empty string. The sandbox stops attribute-based
escapes; it does not stop a template from using a lot of CPU or memory (``range`` is capped at
100,000 items and ``*``/``**`` refuse results beyond a million items / exponents above 1024, but
loops can still do much work). Templates come from the operator's configuration, not from callers.

Filters: ``truncate_to(limit, marker="…")``, ``html``, ``bullets(style="-")``,
``paragraphs_html`` (from `connector.text`), ``date(fmt="%Y-%m-%d")``,
``datetime(fmt="%Y-%m-%d %H:%M")``, ``duration_human``, ``e164``, ``national`` (from
`connector.render.filters`).
"""

from __future__ import annotations

import traceback
from collections.abc import Mapping
from typing import Any, Final

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from connector.render.filters import (
    date_filter,
    datetime_filter,
    duration_human,
    e164_filter,
    national_filter,
)
from connector.text import bullets, html, paragraphs_html, truncate_to

__all__ = [
    "TemplateProblem",
    "compile_templates",
    "make_environment",
    "render_fields",
    "render_template",
]

_MAX_SEQUENCE_PRODUCT: Final = 1_000_000
_MAX_EXPONENT: Final = 1024

#: Zero-width joiner: glues emoji into one sequence (family, profession); never cut next to it.
_ZWJ: Final = "\u200d"


class TemplateProblem(Exception):
    """A template of `field` cannot be compiled or rendered; `message` says why.

    `line` is the template line the problem was found on, when known.
    """

    def __init__(self, field: str, message: str, line: int | None = None) -> None:
        super().__init__(field, message, line)
        self.field = field
        self.message = message
        self.line = line

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class _Environment(ImmutableSandboxedEnvironment):
    """The immutable sandbox, plus: ``record.key`` prefers the dict key over a dict method
    (``labels.items`` is the label, not ``dict.items``), and ``*``/``**`` refuse huge results."""

    intercepted_binops = frozenset({"*", "**"})

    def getattr(self, obj: Any, attribute: str) -> Any:
        if isinstance(obj, dict) and not attribute.startswith("_") and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, count in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(count, int)
                    and len(seq) * count > _MAX_SEQUENCE_PRODUCT
                ):
                    raise SecurityError("the result of '*' would be too large")
        if (
            operator == "**"
            and isinstance(right, int | float)
            and abs(right) > _MAX_EXPONENT
            and isinstance(left, int | float)
            and abs(left) > 1
        ):
            raise SecurityError("the exponent of '**' is too large")
        return super().call_binop(context, operator, left, right)


def _finalize(value: Any) -> Any:
    return "" if value is None else value


def make_environment() -> ImmutableSandboxedEnvironment:
    """A new sandboxed environment for field templates, with the filters registered.

    `StrictUndefined` (undefined names and attributes raise), no autoescaping, ``trim_blocks``,
    ``lstrip_blocks``, no kept trailing newline, None printed as "".
    """
    env = _Environment(
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
        finalize=_finalize,
    )
    env.filters.update(
        {
            "truncate_to": truncate_to,
            "html": html,
            "bullets": bullets,
            "paragraphs_html": paragraphs_html,
            "date": date_filter,
            "datetime": datetime_filter,
            "duration_human": duration_human,
            "e164": e164_filter,
            "national": national_filter,
        }
    )
    return env


_ENVIRONMENT: Final = make_environment()


def _template_line(exc: BaseException) -> int | None:
    """The template line a rendering error happened on (Jinja rewrites tracebacks to show it)."""
    lines = [
        frame.lineno
        for frame in traceback.extract_tb(exc.__traceback__)
        if frame.filename == "<template>"
    ]
    return lines[-1] if lines else None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, jinja2.UndefinedError | SecurityError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _with_line(message: str, line: int | None) -> str:
    return f"line {line}: {message}" if line is not None else message


def compile_templates(
    templates: Mapping[str, str],
) -> tuple[dict[str, jinja2.Template], list[TemplateProblem]]:
    """Compile every template with this module's environment.

    Returns the compiled templates of all fields that compiled, and one `TemplateProblem` per
    field that did not (syntax errors name the line; a value that is not a string is a problem
    too). Never raises for bad templates: all problems are reported at once.
    """
    compiled: dict[str, jinja2.Template] = {}
    problems: list[TemplateProblem] = []
    for field, value in templates.items():
        source: object = value  # YAML may hand over numbers, lists or None
        if not isinstance(source, str):
            problems.append(
                TemplateProblem(
                    str(field), f"the template must be text, not {type(source).__name__}"
                )
            )
            continue
        try:
            compiled[field] = _ENVIRONMENT.from_string(source)
        except jinja2.TemplateSyntaxError as exc:
            problems.append(
                TemplateProblem(
                    field, _with_line(f"syntax error: {exc.message}", exc.lineno), exc.lineno
                )
            )
        except Exception as exc:  # anything else the compiler raises is a problem too
            problems.append(TemplateProblem(field, _describe(exc)))
    return compiled, problems


def render_template(field: str, template: jinja2.Template, context: Mapping[str, Any]) -> str:
    """`template` of `field` rendered against `context`, stripped of surrounding whitespace.

    Raises `TemplateProblem` naming the field and, when known, the template line.
    """
    try:
        return template.render(dict(context)).strip()
    except Exception as exc:
        line = _template_line(exc)
        raise TemplateProblem(field, _with_line(_describe(exc), line), line) from exc


def render_fields(
    templates: Mapping[str, jinja2.Template],
    context: Mapping[str, Any],
    limits: Mapping[str, int] | None = None,
) -> dict[str, str]:
    """Render every template against `context`; values are stripped of surrounding whitespace.

    When `limits` names a field, its value is cut with `truncate_to` (marker "…") so that it is
    never longer than the limit. Raises `TemplateProblem` (with the field name, chained to the
    cause) for the first template that fails to render.
    """
    rendered: dict[str, str] = {}
    for field, template in templates.items():
        value = render_template(field, template, context)
        if limits is not None and field in limits:
            value = truncate_to(value, limits[field])
        rendered[field] = value
    return rendered
