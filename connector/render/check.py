"""The configuration check of field templates: compile each, test-render it against samples.

`check_templates` compiles every template and renders it against two built-in sample reports
(a rich one and a minimal one: anonymous caller, no users, no channel, no AI content), so that
an undefined name or a filter error surfaces when the configuration is checked, not at the
first call.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from connector.payload import ActionItem, CallReport, Channel, SmallTalkItem, TranscriptChunk, User
from connector.render.context import build_context
from connector.render.sandbox import TemplateProblem, compile_templates, render_template

__all__ = ["check_templates"]


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
                render_template(field, template, context)
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
