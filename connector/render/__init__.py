"""Render CRM field values from sandboxed Jinja2 templates written by sales ops.

Field values (a call's subject, a note body, a task title) are Jinja2 templates in the YAML
mapping files. They run in an `ImmutableSandboxedEnvironment` (no access to ``_``-prefixed or
internal attributes, no mutation of lists/dicts) with `StrictUndefined`, so that a typo is an
error instead of an empty CRM field. `check_templates` compiles every template and renders it
against two built-in sample reports (a rich one and a minimal one: anonymous caller, no users, no
channel, no AI content), so such errors surface when the configuration is checked. Everything that
goes wrong is a `TemplateProblem` carrying the field name.

Environment: ``trim_blocks``, ``lstrip_blocks``, no autoescaping (HTML bodies use the ``html``,
``bullets(style="html")`` and ``paragraphs_html`` filters), no trailing newline kept; ``None``
prints as the empty string; rendered values are stripped of surrounding whitespace; an inline
``{{ a if b }}`` without ``else`` renders as the empty string. The sandbox stops attribute-based
escapes; it does not stop a template from using a lot of CPU or memory (``range`` is capped at
100,000 items and ``*``/``**`` refuse results beyond a million items / exponents above 1024, but
loops can still do much work). Templates come from the operator's configuration, not from callers.

Context (`build_context`; the same list is returned by `context_reference`):

``call``
    The call itself, with these keys:
``call.id``
    sipgate's call id.
``call.direction``
    ``IN`` or ``OUT``.
``call.direction_label``
    Localised direction, "Inbound call" / "Eingehender Anruf", "Outbound call" /
    "Ausgehender Anruf".
``call.start``
    Start of the call, timezone-aware, in the configured timezone.
``call.end``
    End of the call, timezone-aware, in the configured timezone (start + duration when sipgate
    sent no end time).
``call.date``
    Local date of the start (a ``date``).
``call.duration``
    Duration as a ``timedelta``.
``call.duration_seconds``
    Duration in whole seconds (rounded half up), an ``int``.
``call.duration_human``
    Localised duration, "1 min 23 s" / "1 Min. 23 Sek.".
``call.channel``
    The sipgate channel ``{id, name}``, or None.
``call.payload_version``
    ``1`` for the Conversation Intelligence webhook, ``legacy`` for the older AI Assistant one.
``remote``
    The customer's side (caller of an inbound call, callee of an outbound one), with these keys:
``remote.e164``
    ``+4921163553400``, or empty when the number is anonymous or not a possible phone number.
``remote.digits``
    E.164 without ``+`` (``4921163553400``), or empty.
``remote.national``
    National format (``0211 63553400``), or empty.
``remote.international``
    International format (``+49 211 63553400``), or empty.
``remote.display``
    For people: national format for numbers of the default region, international format for
    others, the raw value when it is no phone number, the localised label ``labels.anonymous``
    when the number is withheld.
``remote.raw``
    The number exactly as sipgate sent it (may be empty or ``anonymous``).
``remote.anonymous``
    True when the number was withheld.
``local``
    Our side (the sipgate number called or calling), with the same keys as ``remote``:
``local.e164``
    See ``remote.e164``.
``local.digits``
    See ``remote.digits``.
``local.national``
    See ``remote.national``.
``local.international``
    See ``remote.international``.
``local.display``
    See ``remote.display``.
``local.raw``
    See ``remote.raw``.
``local.anonymous``
    See ``remote.anonymous``.
``users``
    The sipgate users on the call, a list of ``{user_id, full_user_id, account_id, first_name,
    last_name, full_name}``; may be empty.
``user``
    The first of ``users``, or None.
``headline``
    The AI headline ("" when missing).
``summary``
    The AI summary ("" when missing).
``key_points``
    The summary's key points, a list of strings.
``topics``
    The summary's topics, a list of strings.
``action_items``
    The AI action items, a list of strings.
``small_talk``
    Small-talk passages, a list of ``{topic, description}``.
``transcript``
    The transcript text (built as "SPEAKER: text" lines from the chunks when sipgate sent only
    chunks; "" when there is none).
``transcript_chunks``
    The transcript's utterances, a list of ``{speaker, start_ms, end_ms, content}``.
``scenarios``
    sipgate's call scenarios, a list of dicts as sent.
``language``
    The language of the labels, ``en`` or ``de``.
``timezone``
    The configured timezone name, e.g. ``Europe/Berlin``.
``default_region``
    The region used for numbers without a country code, e.g. ``DE``.
``labels``
    Localised fixed strings for templates, with these keys:
``labels.headline``
    "Headline" / "Überschrift".
``labels.summary``
    "Summary" / "Zusammenfassung".
``labels.key_points``
    "Key points" / "Kernpunkte".
``labels.topics``
    "Topics" / "Themen".
``labels.action_items``
    "Action items" / "Aufgaben".
``labels.small_talk``
    "Small talk" / "Small Talk".
``labels.transcript``
    "Transcript" / "Transkript".
``labels.call_from``
    "Call with" / "Anruf mit".
``labels.inbound``
    "Inbound call" / "Eingehender Anruf".
``labels.outbound``
    "Outbound call" / "Ausgehender Anruf".
``labels.duration``
    "Duration" / "Dauer".
``labels.date``
    "Date" / "Datum".
``labels.time``
    "Time" / "Uhrzeit".
``labels.channel``
    "Channel" / "Kanal".
``labels.user``
    "sipgate user" / "sipgate-Benutzer".
``labels.anonymous``
    "Withheld number" / "Unterdrückte Nummer".

Keys of `build_context`'s ``extra`` are added at the top level (for example the matched CRM
record); they may not replace any key above.

Filters: ``truncate_to(limit, marker="…")``, ``html``, ``bullets(style="-")``,
``paragraphs_html``, ``date(fmt="%Y-%m-%d")``, ``datetime(fmt="%Y-%m-%d %H:%M")``,
``duration_human``, ``e164``, ``national``; see the functions of the same names.
"""

from __future__ import annotations

import datetime as dt
import re
import traceback
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from markupsafe import escape

from connector.payload import (
    ActionItem,
    CallReport,
    Channel,
    SmallTalkItem,
    TranscriptChunk,
    User,
)
from connector.phone import PhoneNumber, is_anonymous, parse_sipgate, parse_stored

__all__ = [
    "LANGUAGES",
    "TemplateProblem",
    "build_context",
    "bullets",
    "check_templates",
    "compile_templates",
    "context_reference",
    "date_filter",
    "datetime_filter",
    "duration_human",
    "e164_filter",
    "html",
    "make_environment",
    "national_filter",
    "paragraphs_html",
    "render_fields",
    "truncate_to",
]

#: Languages with labels; others are refused.
LANGUAGES: Final = ("en", "de")

_LABELS: Final[dict[str, dict[str, str]]] = {
    "en": {
        "headline": "Headline",
        "summary": "Summary",
        "key_points": "Key points",
        "topics": "Topics",
        "action_items": "Action items",
        "small_talk": "Small talk",
        "transcript": "Transcript",
        "call_from": "Call with",
        "inbound": "Inbound call",
        "outbound": "Outbound call",
        "duration": "Duration",
        "date": "Date",
        "time": "Time",
        "channel": "Channel",
        "user": "sipgate user",
        "anonymous": "Withheld number",
    },
    "de": {
        "headline": "Überschrift",
        "summary": "Zusammenfassung",
        "key_points": "Kernpunkte",
        "topics": "Themen",
        "action_items": "Aufgaben",
        "small_talk": "Small Talk",
        "transcript": "Transkript",
        "call_from": "Anruf mit",
        "inbound": "Eingehender Anruf",
        "outbound": "Ausgehender Anruf",
        "duration": "Dauer",
        "date": "Datum",
        "time": "Uhrzeit",
        "channel": "Kanal",
        "user": "sipgate-Benutzer",
        "anonymous": "Unterdrückte Nummer",
    },
}

#: (hours, minutes, seconds) unit words per language.
_DURATION_UNITS: Final[dict[str, tuple[str, str, str]]] = {
    "en": ("h", "min", "s"),
    "de": ("Std.", "Min.", "Sek."),
}

_CONTEXT_REFERENCE: Final[tuple[tuple[str, str], ...]] = (
    ("call", "The call itself (see the call.* keys)."),
    ("call.id", "sipgate's call id."),
    ("call.direction", "IN or OUT."),
    (
        "call.direction_label",
        'Localised direction: "Inbound call" / "Eingehender Anruf", "Outbound call" / '
        '"Ausgehender Anruf".',
    ),
    ("call.start", "Start of the call, timezone-aware, in the configured timezone."),
    (
        "call.end",
        "End of the call, timezone-aware, in the configured timezone (start + duration when "
        "sipgate sent no end time).",
    ),
    ("call.date", "Local date of the start (a date)."),
    ("call.duration", "Duration as a timedelta."),
    ("call.duration_seconds", "Duration in whole seconds (rounded half up), an int."),
    ("call.duration_human", 'Localised duration: "1 min 23 s" / "1 Min. 23 Sek.".'),
    ("call.channel", "The sipgate channel {id, name}, or None."),
    ("call.payload_version", '"1" (Conversation Intelligence webhook) or "legacy".'),
    ("remote", "The customer's side: caller of an inbound call, callee of an outbound one."),
    ("remote.e164", "+4921163553400, or empty when anonymous or not a possible number."),
    ("remote.digits", "E.164 without + (4921163553400), or empty."),
    ("remote.national", "National format (0211 63553400), or empty."),
    ("remote.international", "International format (+49 211 63553400), or empty."),
    (
        "remote.display",
        "For people: national format for numbers of the default region, international for "
        "others, the raw value when it is no phone number, labels.anonymous when withheld.",
    ),
    ("remote.raw", "The number exactly as sipgate sent it (may be empty or 'anonymous')."),
    ("remote.anonymous", "True when the number was withheld."),
    ("local", "Our side (the sipgate number), with the same keys as remote."),
    ("local.e164", "See remote.e164."),
    ("local.digits", "See remote.digits."),
    ("local.national", "See remote.national."),
    ("local.international", "See remote.international."),
    ("local.display", "See remote.display."),
    ("local.raw", "See remote.raw."),
    ("local.anonymous", "See remote.anonymous."),
    (
        "users",
        "The sipgate users on the call: list of {user_id, full_user_id, account_id, "
        "first_name, last_name, full_name}; may be empty.",
    ),
    ("user", "The first of users, or None."),
    ("headline", 'The AI headline ("" when missing).'),
    ("summary", 'The AI summary ("" when missing).'),
    ("key_points", "The summary's key points, a list of strings."),
    ("topics", "The summary's topics, a list of strings."),
    ("action_items", "The AI action items, a list of strings."),
    ("small_talk", "Small-talk passages, a list of {topic, description}."),
    (
        "transcript",
        'The transcript text (built as "SPEAKER: text" lines from the chunks when sipgate sent '
        'only chunks; "" when there is none).',
    ),
    (
        "transcript_chunks",
        "The transcript's utterances: list of {speaker, start_ms, end_ms, content}.",
    ),
    ("scenarios", "sipgate's call scenarios, a list of dicts as sent."),
    ("language", "The language of the labels: en or de."),
    ("timezone", "The configured timezone name, e.g. Europe/Berlin."),
    ("default_region", "The region used for numbers without a country code, e.g. DE."),
    ("labels", "Localised fixed strings for templates (see the labels.* keys)."),
    *(
        (f"labels.{key}", f'"{_LABELS["en"][key]}" / "{_LABELS["de"][key]}".')
        for key in _LABELS["en"]
    ),
)

#: Upper bound for the size of a sequence built with ``*`` and for an exponent with ``**``.
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


# --- filters --------------------------------------------------------------------------------


def _utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _prefix_within(text: str, budget: int) -> int:
    """Length of the longest prefix of `text` that takes at most `budget` UTF-16 code units."""
    if _utf16_units(text) == len(text):
        return min(budget, len(text))
    units = 0
    for index, char in enumerate(text):
        units += 2 if ord(char) > 0xFFFF else 1
        if units > budget:
            return index
    return len(text)


def _is_regional_indicator(char: str) -> bool:
    return "\U0001f1e6" <= char <= "\U0001f1ff"


def _splits_cluster(text: str, cut: int) -> bool:
    """True when cutting `text` before index `cut` would split a user-perceived character."""
    before, after = text[cut - 1], text[cut]
    if unicodedata.category(after) in ("Mn", "Mc", "Me"):
        return True
    if after == _ZWJ or before == _ZWJ or "\U0001f3fb" <= after <= "\U0001f3ff":
        return True
    if before == "\r" and after == "\n":
        return True
    if "\ud800" <= before <= "\udbff" and "\udc00" <= after <= "\udfff":  # lone surrogates
        return True
    if _is_regional_indicator(before) and _is_regional_indicator(after):
        run = 0
        while cut - 1 - run >= 0 and _is_regional_indicator(text[cut - 1 - run]):
            run += 1
        return run % 2 == 1
    return False


def truncate_to(value: Any, limit: int, marker: str = "…") -> str:
    """Cut `value` so that the result, `marker` included, is at most `limit` characters long.

    A value that fits is returned unchanged; otherwise it is cut, trailing whitespace removed and
    `marker` appended. Length is counted in UTF-16 code units (what Java/JavaScript based CRMs
    count), which is never less than Python's ``len``, so the result fits either way. The cut
    does not split a combining mark, emoji sequence or flag from its base when that can be avoided.
    If `limit` leaves no room for any text besides the marker, the text is cut without marker.
    None becomes "". Raises ValueError for a negative `limit`.
    """
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise TypeError(f"truncate_to: limit must be an integer, not {type(limit).__name__}")
    if limit < 0:
        raise ValueError(f"truncate_to: limit must not be negative, got {limit}")
    text = "" if value is None else str(value)
    if _utf16_units(text) <= limit:
        return text
    mark = "" if marker is None else str(marker)
    if _utf16_units(mark) >= limit:
        mark = ""
    cut = _prefix_within(text, limit - _utf16_units(mark))
    steps = 0
    while 0 < cut < len(text) and steps < 32 and _splits_cluster(text, cut):
        cut -= 1
        steps += 1
    return text[:cut].rstrip() + mark


def html(value: Any) -> str:
    """`value` as text with ``& < > " '`` escaped for HTML; None becomes ""."""
    if value is None:
        return ""
    return str(escape(value))


def _item_text(item: Any) -> str:
    if item is None:
        return ""
    if isinstance(item, ActionItem):
        return item.content
    if isinstance(item, Mapping):
        if "content" in item:
            return str(item["content"] or "")
        if "topic" in item or "description" in item:
            parts = [str(item.get("topic") or ""), str(item.get("description") or "")]
            return ": ".join(p for p in parts if p)
    return str(item)


def _html_lines(text: str) -> str:
    return "<br>".join(html(line) for line in text.split("\n"))


def bullets(items: Any, style: str = "-") -> str:
    """A list as bullet points; empty items are left out, no items give "".

    Plain (default): one ``"- item"`` line per item, `style` being the bullet (``"*"``, ``"•"``);
    continuation lines of multi-line items are indented. ``style="html"``:
    ``<ul><li>item</li>…</ul>`` with every item HTML-escaped (newlines as ``<br>``). A single
    string counts as one item; dicts with ``content`` or ``topic``/``description`` are shown by
    those values.
    """
    if items is None:
        return ""
    sequence: Iterable[Any] = [items] if isinstance(items, str) else items
    texts = [_item_text(item).replace("\r\n", "\n").strip() for item in sequence]
    texts = [text for text in texts if text]
    if not texts:
        return ""
    if style == "html":
        return "<ul>" + "".join(f"<li>{_html_lines(text)}</li>" for text in texts) + "</ul>"
    indent = "\n" + " " * (len(style) + 1)
    return "\n".join(f"{style} {text.replace(chr(10), indent)}" for text in texts)


_PARAGRAPH_BREAK: Final = re.compile(r"\n[ \t]*\n\s*")


def paragraphs_html(value: Any) -> str:
    """Text as HTML paragraphs: ``<p>…</p>`` per blank-line separated paragraph, HTML-escaped,
    single newlines as ``<br>``; None or blank text gives ""."""
    if value is None:
        return ""
    text = str(value).replace("\r\n", "\n").replace("\r", "\n")
    paragraphs = [p.strip() for p in _PARAGRAPH_BREAK.split(text)]
    return "".join(f"<p>{_html_lines(p)}</p>" for p in paragraphs if p)


def _as_datetime(value: Any) -> dt.date:
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        return dt.datetime.fromisoformat(value)
    raise TypeError(f"expected a date or datetime, not {type(value).__name__}")


def _localise(context: Context, value: dt.date) -> dt.date:
    """An aware datetime moved to the context's timezone; anything else unchanged."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        zone = context.get("timezone")
        if isinstance(zone, str):
            return value.astimezone(_zone(zone))
    return value


@jinja2.pass_context
def date_filter(context: Context, value: Any, fmt: str = "%Y-%m-%d") -> str:
    """Filter ``date``: a date or datetime (or ISO-8601 string) formatted with ``strftime(fmt)``.

    Aware datetimes are shown in the configured timezone first. None gives "".
    """
    if value is None:
        return ""
    return _localise(context, _as_datetime(value)).strftime(fmt)


@jinja2.pass_context
def datetime_filter(context: Context, value: Any, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Filter ``datetime``: like ``date`` with the default format ``%Y-%m-%d %H:%M``."""
    if value is None:
        return ""
    return _localise(context, _as_datetime(value)).strftime(fmt)


def _language(language: str) -> str:
    code = language.strip().replace("_", "-").split("-")[0].lower() if language else ""
    if code not in LANGUAGES:
        raise ValueError(f"unsupported language {language!r}; supported: {', '.join(LANGUAGES)}")
    return code


def _whole_seconds(value: dt.timedelta) -> int:
    """Seconds of `value`, rounded half up (82.5 s → 83 s)."""
    return int((value + dt.timedelta(milliseconds=500)) // dt.timedelta(seconds=1))


def _duration_text(value: Any, language: str) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.timedelta):
        seconds = _whole_seconds(value)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = _whole_seconds(dt.timedelta(seconds=value))
    else:
        raise TypeError(
            f"duration_human expects a timedelta or seconds, not {type(value).__name__}"
        )
    hour_unit, minute_unit, second_unit = _DURATION_UNITS[_language(language)]
    sign = "-" if seconds < 0 else ""
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    parts = []
    if hours:
        parts.append(f"{hours} {hour_unit}")
    if minutes:
        parts.append(f"{minutes} {minute_unit}")
    if secs or not parts:
        parts.append(f"{secs} {second_unit}")
    return sign + " ".join(parts)


@jinja2.pass_context
def duration_human(context: Context, value: Any, language: str | None = None) -> str:
    """Filter ``duration_human``: a timedelta (or seconds) as "1 h 2 min 3 s" / "1 Std. 2 Min.
    3 Sek.", in `language` or else the context's language; zero parts are left out, zero is
    "0 s"; seconds are rounded half up. None gives ""."""
    return _duration_text(value, language or str(context.get("language") or "en"))


def _parse_number(value: Any, default_region: str) -> PhoneNumber | None:
    if isinstance(value, PhoneNumber):
        return value
    if not isinstance(value, str):
        return None
    text = value.strip()
    digits = text.removeprefix("+")
    if digits.isascii() and digits.isdigit() and not digits.startswith("0"):
        return parse_sipgate(text)  # sipgate's E.164 digits
    return parse_stored(text, default_region)


@jinja2.pass_context
def e164_filter(context: Context, value: Any) -> str:
    """Filter ``e164``: a raw number as ``+4921163553400``; unparseable input is returned as is."""
    number = _parse_number(value, str(context.get("default_region") or "DE"))
    if number is not None:
        return number.e164
    return "" if value is None else str(value)


@jinja2.pass_context
def national_filter(context: Context, value: Any) -> str:
    """Filter ``national``: a raw number as ``0211 63553400``; unparseable input returned as is."""
    number = _parse_number(value, str(context.get("default_region") or "DE"))
    if number is not None:
        return number.national()
    return "" if value is None else str(value)


# --- environment ----------------------------------------------------------------------------


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
    """A new sandboxed environment for field templates, with this module's filters registered.

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


def _render_one(field: str, template: jinja2.Template, context: Mapping[str, Any]) -> str:
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
        value = _render_one(field, template, context)
        if limits is not None and field in limits:
            value = truncate_to(value, limits[field])
        rendered[field] = value
    return rendered


# --- context --------------------------------------------------------------------------------


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ValueError(f"unknown timezone {name!r}") from exc


def _party(raw: str, default_region: str, labels: Mapping[str, str]) -> dict[str, Any]:
    number = parse_sipgate(raw)
    anonymous = is_anonymous(raw)
    if number is not None:
        display = number.national() if number.region == default_region else number.international()
    elif anonymous:
        display = labels["anonymous"]
    else:
        display = raw.strip()
    return {
        "e164": number.e164 if number else "",
        "digits": number.digits() if number else "",
        "national": number.national() if number else "",
        "international": number.international() if number else "",
        "display": display,
        "raw": raw,
        "anonymous": anonymous,
    }


def _user(user: User) -> dict[str, str]:
    return {
        "user_id": user.user_id,
        "full_user_id": user.full_user_id,
        "account_id": user.account_id,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "full_name": user.full_name,
    }


def _chunk(chunk: TranscriptChunk) -> dict[str, Any]:
    return {
        "speaker": chunk.speaker,
        "start_ms": chunk.start_ms,
        "end_ms": chunk.end_ms,
        "content": chunk.content,
    }


def _transcript(report: CallReport) -> str:
    if report.transcript:
        return report.transcript
    return "\n".join(
        f"{chunk.speaker}: {chunk.content}" if chunk.speaker else chunk.content
        for chunk in report.transcript_chunks
        if chunk.content
    )


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


def build_context(
    report: CallReport,
    *,
    timezone: str = "Europe/Berlin",
    language: str = "en",
    default_region: str = "DE",
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The template context for `report`; every key is described in this module's docstring.

    Times are converted to `timezone` (an IANA name), labels and durations use `language`
    (``en``, ``de``; ``de-DE`` counts as ``de``), `default_region` decides which numbers are
    shown in national format. `extra` is merged in at the top level. Raises ValueError for an
    unknown timezone or language and for `extra` keys that would replace a built-in key.
    """
    zone = _zone(timezone)
    lang = _language(language)
    region = default_region.strip().upper()
    labels = dict(_LABELS[lang])
    start_utc = _aware(report.start_time)
    end_utc = _aware(report.end_time) if report.end_time else start_utc + report.duration
    start = start_utc.astimezone(zone)
    channel: Channel | None = report.channel
    users = [_user(u) for u in report.users]
    context: dict[str, Any] = {
        "call": {
            "id": report.call_id,
            "direction": report.direction,
            "direction_label": labels["inbound" if report.direction == "IN" else "outbound"],
            "start": start,
            "end": end_utc.astimezone(zone),
            "date": start.date(),
            "duration": report.duration,
            "duration_seconds": _whole_seconds(report.duration),
            "duration_human": _duration_text(report.duration, lang),
            "channel": {"id": channel.id, "name": channel.name} if channel else None,
            "payload_version": report.payload_version,
        },
        "remote": _party(report.remote_number, region, labels),
        "local": _party(report.local_number, region, labels),
        "users": users,
        "user": users[0] if users else None,
        "headline": report.headline,
        "summary": report.summary,
        "key_points": list(report.key_points),
        "topics": list(report.topics),
        "action_items": [item.content for item in report.action_items],
        "small_talk": [
            {"topic": item.topic, "description": item.description} for item in report.small_talk
        ],
        "transcript": _transcript(report),
        "transcript_chunks": [_chunk(chunk) for chunk in report.transcript_chunks],
        "scenarios": [dict(scenario) for scenario in report.scenarios],
        "language": lang,
        "timezone": timezone,
        "default_region": region,
        "labels": labels,
    }
    if extra:
        clashes = sorted(set(extra) & set(context))
        if clashes:
            raise ValueError(f"extra context keys would replace built-in keys: {clashes}")
        context.update(extra)
    return context


def context_reference() -> list[tuple[str, str]]:
    """Every context key (nested ones dotted, ``call.start``) with a one-line description.

    The top-level names are exactly the keys `build_context` returns without ``extra``.
    """
    return list(_CONTEXT_REFERENCE)


# --- configuration check ----------------------------------------------------------------------


def _sample_reports() -> tuple[tuple[str, CallReport], ...]:
    """A rich and a minimal report, built here so that checks need no files. Fictional data."""
    start = dt.datetime(2026, 4, 8, 9, 22, 41, tzinfo=dt.UTC)
    rich = CallReport(
        call_id="sample-call-0001",
        payload_version="1",
        from_number="4930123456789",
        to_number="4930123456700",
        start_time=start,
        end_time=start + dt.timedelta(seconds=83),
        duration=dt.timedelta(milliseconds=82_666),
        direction="IN",
        users=(
            User("w0", "1234567w0", "1234567", "Erika", "Musterfrau", "Erika Musterfrau"),
            User("w1", "1234567w1", "1234567", "Max", "Mustermann", "Max Mustermann"),
        ),
        channel=Channel("00000000-0000-0000-0000-000000000000", "Sample channel"),
        llm_provider="SAMPLE",
        headline="Sample headline: question about an invoice",
        summary="A sample customer asked about an invoice.\n\nA plan change was discussed.",
        key_points=("The invoice was correct.", "The customer wants another plan."),
        topics=("Invoice", "Plan change"),
        action_items=(ActionItem("Send the plan options."), ActionItem("Check the invoice.")),
        small_talk=(SmallTalkItem("Greeting", "Both greeted each other."),),
        transcript="Caller: Hello, this is a sample call.\nCallee: Hello, how can I help?",
        transcript_chunks=(
            TranscriptChunk("CALLER", 0, 2_500, "Hello, this is a sample call."),
            TranscriptChunk("CALLEE", 2_600, 4_000, "Hello, how can I help?"),
        ),
        scenarios=({"name": "sample-scenario", "result": "sample"},),
    )
    minimal = CallReport(
        call_id="sample-call-0002",
        payload_version="legacy",
        from_number="anonymous",
        to_number="4930123456700",
        start_time=start,
        end_time=None,
        duration=dt.timedelta(0),
        direction="IN",
    )
    return (
        ("the full sample report", rich),
        ("the minimal sample report: anonymous caller, no users, channel or AI content", minimal),
    )


def check_templates(
    templates: Mapping[str, str],
    language: str = "en",
    *,
    extra: Mapping[str, Any] | None = None,
) -> list[TemplateProblem]:
    """All problems of `templates`, found by compiling and by rendering each against samples.

    Every template is rendered against the context of a rich sample report and of a minimal one
    (anonymous caller, no users, no channel, no AI content, no end time), in `language`, with
    `extra` sample values merged in; undefined names and attributes, sandbox violations and
    filter errors become `TemplateProblem` s naming the field, the line and the sample. An
    empty list means every template renders for both samples. Raises ValueError only for an
    unsupported `language` or clashing `extra` keys.
    """
    compiled, problems = compile_templates(templates)
    contexts = [
        (name, build_context(report, language=language, extra=extra))
        for name, report in _sample_reports()
    ]
    for field, template in compiled.items():
        seen: set[str] = set()
        for sample_name, context in contexts:
            try:
                _render_one(field, template, context)
            except TemplateProblem as problem:
                if problem.message in seen:
                    continue
                seen.add(problem.message)
                problems.append(
                    TemplateProblem(
                        field, f"{problem.message} (rendering {sample_name})", problem.line
                    )
                )
    order = {field: index for index, field in enumerate(templates)}
    problems.sort(key=lambda problem: order.get(problem.field, len(order)))
    return problems
