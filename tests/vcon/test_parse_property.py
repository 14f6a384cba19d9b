"""Any change to a vCon is refused with field paths or read into a report that survives vCon out."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.payload import CallReport, PayloadError, parse_body
from connector.vcon.write import vcon_document

FIXTURE = Path(__file__).parents[1] / "fixtures" / "vcon" / "inbound-call.vcon.json"
DOCUMENT: dict[str, Any] = json.loads(FIXTURE.read_text("utf-8"))

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["tel:+4930123456701", "2026-04-08T09:22:41Z", "json", "base64url", "agent"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


PATHS = _paths(DOCUMENT)


def _changed(document: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    document = copy.deepcopy(document)
    node: Any = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return document


def _comparable(report: CallReport) -> CallReport:
    # What vCon cannot carry (README, "The vcon target"): the end time and a withheld number.
    return replace(
        report,
        end_time=None,
        from_number="" if report.from_number == "anonymous" else report.from_number,
        to_number="" if report.to_number == "anonymous" else report.to_number,
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(PATHS), JSON_VALUES), min_size=1, max_size=3))
def test_a_changed_vcon_is_refused_or_round_trips(changes: list[tuple[Any, Any]]) -> None:
    document = DOCUMENT
    for path, value in changes:
        try:
            document = _changed(document, path, value)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed the path
    try:
        report = parse_body(json.dumps(document).encode())
    except PayloadError as exc:
        assert exc.messages and all(isinstance(v, list) for v in exc.messages.values())
        return
    again = parse_body(json.dumps(vcon_document(report)).encode())
    assert _comparable(again) == _comparable(report)
