"""Every form field of every console page has a label (a <label> or an aria-label)."""

from __future__ import annotations

from collections.abc import Callable
from html.parser import HTMLParser

import pytest
from flask import Flask
from flask.testing import FlaskClient

from connector.services import Services
from tests.web.console.test_review import hold

FIELDS = frozenset({"input", "select", "textarea"})
UNLABELLED_TYPES = frozenset({"hidden", "submit", "button"})


class Fields(HTMLParser):
    """The form fields of a page, each with whether something labels it."""

    def __init__(self) -> None:
        super().__init__()
        self.open_labels = 0
        self.label_for: set[str] = set()
        self.fields: list[tuple[str, bool, str | None]] = []  # (description, labelled, id)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "label":
            self.open_labels += 1
            if found.get("for"):
                self.label_for.add(str(found["for"]))
        elif tag in FIELDS and found.get("type") not in UNLABELLED_TYPES:
            labelled = self.open_labels > 0 or bool(found.get("aria-label"))
            self.fields.append((f"<{tag} name={found.get('name')}>", labelled, found.get("id")))

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self.open_labels -= 1

    def unlabelled(self) -> list[str]:
        return [
            name
            for name, labelled, field_id in self.fields
            if not labelled and (field_id is None or field_id not in self.label_for)
        ]


def fields_of(html: str) -> Fields:
    parser = Fields()
    parser.feed(html)
    return parser


def test_the_parser_sees_an_unlabelled_field() -> None:
    page = fields_of(
        '<label>A <input name="a"></label><label for="b">B</label><input id="b" name="b">'
        '<input name="c" aria-label="C"><input type="hidden" name="t"><select name="d"></select>'
    )
    assert page.unlabelled() == ["<select name=d>"]
    assert len(page.fields) == 4


@pytest.fixture
def operator_pages(
    operator: FlaskClient, console_services: Services, store_call: Callable[..., str]
) -> dict[str, str]:
    store_call("pbx-1")
    hold(console_services)
    paths = ["/console/", "/console/calls", "/console/calls/pbx-1", "/console/review"]
    paths.append("/console/configuration")
    return {path: operator.get(path).get_data(as_text=True) for path in paths}


def test_every_field_of_every_page_has_a_label(operator_pages: dict[str, str], app: Flask) -> None:
    login = app.test_client().get("/console/login").get_data(as_text=True)
    counted = 0
    for path, html in {**operator_pages, "/console/login": login}.items():
        page = fields_of(html)
        assert page.unlabelled() == [], path
        counted += len(page.fields)
    # the login's two, the calls filters' eight, the review's remember box and search box
    assert counted >= 12
