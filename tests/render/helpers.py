"""Helpers of the rendering tests: render one template, move a report in time."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from connector.payload import CallReport
from connector.render.sandbox import compile_templates, render_fields


def render_one(source: str, context: dict[str, Any], limit: int | None = None) -> str:
    templates, problems = compile_templates({"field": source})
    assert problems == []
    limits = {"field": limit} if limit is not None else None
    return render_fields(templates, context, limits)["field"]


def at(report: CallReport, iso: str) -> CallReport:
    start = dt.datetime.fromisoformat(iso)
    return dataclasses.replace(report, start_time=start, end_time=None)
