"""Console fixtures: an app with a viewer and an operator, logged-in test clients, stored calls."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash

from connector.config.sections import Config
from connector.services import Services
from connector.web.app import create_app

PASSWORD = "correct horse battery staple"
# A cheap hash keeps the tests fast; production hashes come from `console hash-password`.
HASH = generate_password_hash(PASSWORD, "pbkdf2:sha256:1000")
KEY = "k" * 40
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def console_section(**overrides: Any) -> dict[str, Any]:
    section: dict[str, Any] = {
        "enabled": True,
        "secret_key": KEY,
        "users": [
            {"name": "vera", "password_hash": HASH, "role": "viewer"},
            {"name": "otto", "password_hash": HASH, "role": "operator"},
        ],
    }
    return {**section, **overrides}


@pytest.fixture
def console_services(write_config: Callable[..., Config]) -> Iterator[Services]:
    opened = Services.open(write_config(console=console_section()))
    yield opened
    opened.close()


@pytest.fixture
def app(console_services: Services) -> Flask:
    return create_app(console_services.config, console_services.ledger)


def csrf_of(client: FlaskClient, path: str = "/console/login") -> str:
    page = client.get(path).get_data(as_text=True)
    found = CSRF.search(page)
    assert found, page
    return found.group(1)


def log_in(client: FlaskClient, user: str, password: str = PASSWORD) -> Any:
    token = csrf_of(client)
    return client.post(
        "/console/login", data={"user": user, "password": password, "csrf_token": token}
    )


def post_form(client: FlaskClient, path: str, page: str, **data: Any) -> Any:
    """POST a console form with the CSRF token from `page`."""
    return client.post(path, data={"csrf_token": csrf_of(client, page), **data})


@pytest.fixture
def viewer(app: Flask) -> FlaskClient:
    client = app.test_client()
    assert log_in(client, "vera").status_code == 302
    return client


@pytest.fixture
def operator(app: Flask) -> FlaskClient:
    client = app.test_client()
    assert log_in(client, "otto").status_code == 302
    return client


@pytest.fixture
def store_call(console_services: Services, example_v1: dict[str, Any]) -> Callable[..., str]:
    """Store a call like the webhook does (variants of sipgate's example); returns its id."""
    from connector.payload import parse_report

    def store(call_id: str, **call: Any) -> str:
        document = json.loads(json.dumps(example_v1))
        document["call"].update({"id": call_id, **call})
        body = json.dumps(document).encode()
        targets = [t.name for t in console_services.config.targets]
        console_services.ledger.store_call(parse_report(document), body, targets)
        return call_id

    return store
