"""The review queue's search box: a number or a name, by name only where the target can."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select, update

from connector.config.load import load_config
from connector.ledger.requests import SEARCH, Requests
from connector.ledger.tables import REVIEW, deliveries
from connector.payload import parse_report
from connector.services import Services
from connector.web.app import create_app
from connector.web.console.review import search_params
from tests.conftest import base_config
from tests.web.console.conftest import console_section, log_in, post_form


@pytest.fixture
def two_targets(tmp_path: Path, example_v1: dict[str, Any]) -> Iterator[Services]:
    """A database target (no name search) and a HubSpot target (name search), one held call."""
    targets = [
        {"name": "warehouse", "type": "database", "url": f"sqlite:///{tmp_path / 'calls.db'}"},
        {"name": "crm", "type": "hubspot", "access_token": "pat-eu1-fictional"},
    ]
    path = tmp_path / "config.yaml"
    document = base_config(tmp_path, console=console_section(), targets=targets)
    path.write_text(json.dumps(document))
    opened = Services.open(load_config(path))
    body = json.dumps(example_v1).encode()
    opened.ledger.store_call(parse_report(example_v1), body, ["warehouse", "crm"])
    with opened.ledger.engine.begin() as conn:
        conn.execute(
            update(deliveries).values(
                status=REVIEW,
                refs={"review": {"reason": "unmatched", "candidates": []}},
                next_attempt_at=datetime.now(UTC) + timedelta(hours=4),
            )
        )
    yield opened
    opened.close()


@pytest.fixture
def operator_of(two_targets: Services) -> FlaskClient:
    app: Flask = create_app(two_targets.config, two_targets.ledger)
    client = app.test_client()
    assert log_in(client, "otto").status_code == 302
    return client


def delivery_of(services: Services, target: str) -> int:
    with services.ledger.connection() as conn:
        return int(
            conn.execute(select(deliveries.c.id).where(deliveries.c.target == target)).scalar_one()
        )


@pytest.mark.parametrize(
    ("typed", "params"),
    [
        ("0211 635534-00", {"number": "0211 635534-00"}),
        ("+49 (211) 63553400", {"number": "+49 (211) 63553400"}),
        ("Erika Beispiel", {"name": "Erika Beispiel"}),
        ("Müller-Lüdenscheidt GmbH", {"name": "Müller-Lüdenscheidt GmbH"}),
        ("Erika 2", {"name": "Erika 2"}),
    ],
)
def test_a_number_looking_input_searches_by_phone_anything_else_by_name(
    typed: str, params: dict[str, str]
) -> None:
    assert search_params(typed, "DE") == params


def test_the_form_says_which_targets_search_by_name(
    operator_of: FlaskClient, two_targets: Services
) -> None:
    page = operator_of.get("/console/review").get_data(as_text=True)
    crm = page.split(f'id="delivery-{delivery_of(two_targets, "crm")}"')[1].split("</section>")[0]
    warehouse = page.split(f'id="delivery-{delivery_of(two_targets, "warehouse")}"')[1]
    warehouse = warehouse.split("</section>")[0]
    assert "Phone number or name" in crm and "cannot search by name" not in crm
    assert "Phone number (this target cannot search by name)" in warehouse
    german = operator_of.get("/console/review?lang=de").get_data(as_text=True)
    assert "Telefonnummer oder Name" in german and "nicht nach Namen suchen" in german


def test_a_name_goes_to_the_worker_as_a_name_search(
    operator_of: FlaskClient, two_targets: Services
) -> None:
    delivery = delivery_of(two_targets, "crm")
    response = post_form(
        operator_of, f"/console/review/{delivery}/search", "/console/review", query=" Beispiel "
    )
    assert response.status_code == 302
    [waiting] = Requests(two_targets.ledger.engine).recent(SEARCH)
    assert waiting.target == "crm"
    assert waiting.params == {"name": "Beispiel", "delivery_id": delivery}
    page = operator_of.get("/console/review").get_data(as_text=True)
    assert 'value="Beispiel"' in page  # the box keeps what was searched


def test_a_target_without_name_search_refuses_a_name_but_takes_a_number(
    operator_of: FlaskClient, two_targets: Services
) -> None:
    delivery = delivery_of(two_targets, "warehouse")
    path = f"/console/review/{delivery}/search"
    refused = post_form(operator_of, path, "/console/review", query="Beispiel")
    assert refused.status_code == 400
    assert "searches by phone number only" in refused.get_data(as_text=True)
    assert Requests(two_targets.ledger.engine).recent(SEARCH) == []
    taken = post_form(operator_of, path, "/console/review", query="0211 63553400")
    assert taken.status_code == 302
    [waiting] = Requests(two_targets.ledger.engine).recent(SEARCH)
    assert waiting.params == {"number": "0211 63553400", "delivery_id": delivery}
