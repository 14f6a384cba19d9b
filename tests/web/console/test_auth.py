"""Console logins, sessions, CSRF, roles and the login rate limit under Flask's test client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from connector.config.sections import Config
from connector.ledger.tables import console_actions
from connector.services import Services
from connector.web.app import create_app
from tests.web.console.conftest import CSRF, PASSWORD, console_section, csrf_of, log_in


def actions(services: Services) -> list[tuple[str, str]]:
    with services.ledger.connection() as conn:
        return [(r.user, r.action) for r in conn.execute(select(console_actions))]


def test_nothing_is_reachable_without_a_login(app: Flask) -> None:
    client = app.test_client()
    for path in ("/console/", "/console/calls", "/console/calls/pbx-1"):
        response = client.get(path)
        assert response.status_code == 302
        assert response.location.startswith("/console/login?next=")
    assert client.post("/console/logout").status_code == 400  # no CSRF token either


def test_login_sets_a_secure_httponly_lax_cookie_and_logout_ends_it(
    app: Flask, console_services: Services
) -> None:
    client = app.test_client()
    response = log_in(client, "vera")
    assert response.status_code == 302
    assert response.location == "/console/"
    cookie = response.headers["Set-Cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    page = client.get("/console/")
    assert page.status_code == 200
    assert "vera" in page.get_data(as_text=True)
    token = csrf_of(client, "/console/")
    assert client.post("/console/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/console/").status_code == 302
    assert actions(console_services) == [("vera", "login"), ("vera", "logout")]


def test_login_goes_back_to_the_page_asked_for_but_never_off_the_console(app: Flask) -> None:
    client = app.test_client()
    token = csrf_of(client)
    form = {"user": "vera", "password": PASSWORD, "csrf_token": token}
    response = client.post("/console/login?next=/console/calls?q=1", data=form)
    assert response.location == "/console/calls?q=1"
    client = app.test_client()
    form["csrf_token"] = csrf_of(client)
    response = client.post("/console/login?next=//evil.example/console/", data=form)
    assert response.location == "/console/"


def test_wrong_password_and_unknown_user_get_the_same_answer(
    app: Flask, console_services: Services
) -> None:
    wrong = log_in(app.test_client(), "vera", "nope")
    unknown = log_in(app.test_client(), "nobody", "nope")
    assert wrong.status_code == unknown.status_code == 401
    assert "Wrong user name or password." in wrong.get_data(as_text=True)
    assert CSRF.sub("", wrong.get_data(as_text=True)) == CSRF.sub(
        "", unknown.get_data(as_text=True)
    )
    assert actions(console_services) == [("vera", "login_failed"), ("nobody", "login_failed")]


def test_a_login_without_the_csrf_token_is_refused(app: Flask) -> None:
    client = app.test_client()
    client.get("/console/login")
    response = client.post("/console/login", data={"user": "vera", "password": PASSWORD})
    assert response.status_code == 400
    response = client.post(
        "/console/login", data={"user": "vera", "password": PASSWORD, "csrf_token": "forged"}
    )
    assert response.status_code == 400
    assert client.get("/console/").status_code == 302


def test_logins_are_rate_limited_per_user_across_processes(
    write_config: Callable[..., Config],
) -> None:
    config = write_config(console=console_section(login_attempts=3))
    services = Services.open(config)
    try:
        for _ in range(3):
            assert (
                log_in(create_app(config, services.ledger).test_client(), "vera", "x").status_code
                == 401
            )
        # Another app (another gunicorn worker) sees the same failures: they are in the ledger.
        other = create_app(config, services.ledger).test_client()
        limited = log_in(other, "vera")
        assert limited.status_code == 429
        assert "Too many failed logins" in limited.get_data(as_text=True)
        assert log_in(other, "otto").status_code == 302  # another user is not locked out
    finally:
        services.close()


def test_a_removed_user_is_logged_out(
    app: Flask, console_services: Services, write_config: Callable[..., Config]
) -> None:
    client = app.test_client()
    log_in(client, "vera")
    only_otto = console_section(users=console_section()["users"][1:])
    reconfigured = create_app(write_config(console=only_otto), console_services.ledger)
    client_cookie = client.get_cookie("sipgate_console")
    assert client_cookie is not None
    other = reconfigured.test_client()
    other.set_cookie("sipgate_console", client_cookie.value)
    assert other.get("/console/").status_code == 302


def test_labels_follow_defaults_language_and_can_be_switched(
    write_config: Callable[..., Config],
) -> None:
    config = write_config(console=console_section(), defaults={"language": "de"})
    services = Services.open(config)
    try:
        client = create_app(config, services.ledger).test_client()
        assert "Anmelden" in client.get("/console/login").get_data(as_text=True)
        log_in(client, "vera")
        assert "Übersicht" in client.get("/console/").get_data(as_text=True)
        assert "Overview" in client.get("/console/?lang=en").get_data(as_text=True)
        assert "Overview" in client.get("/console/").get_data(as_text=True)  # kept in the session
    finally:
        services.close()


def test_the_console_is_off_unless_configured(services: Services) -> None:
    client = create_app(services.config, services.ledger).test_client()
    assert client.get("/console/").status_code == 404
    assert client.get("/console/login").status_code == 404


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"secret_key": "short"}, "At least 32 characters"),
        ({"users": []}, "at least one user"),
        ({"users": [{"name": "a", "password_hash": "plain"}]}, "hash-password"),
        ({"users": [{"name": "a", "password_hash": "pbkdf2:x", "role": "admin"}]}, "one of"),
    ],
)
def test_console_configuration_problems_are_reported(
    write_config: Callable[..., Config], section: dict[str, Any], message: str
) -> None:
    from connector.problems import ConfigError

    with pytest.raises(ConfigError) as caught:
        write_config(console=console_section(**section))
    assert any(message.lower() in str(p).lower() for p in caught.value.problems)


def test_the_webhook_path_is_unaffected(
    app: Flask, console_services: Services, example_v1: dict[str, Any]
) -> None:
    import json

    client: FlaskClient = app.test_client()
    response = client.post(
        "/webhooks/sipgate", data=json.dumps(example_v1), content_type="application/json"
    )
    assert response.status_code == 200  # no session, no CSRF token needed
    assert response.json == {"status": "accepted", "call_id": example_v1["call"]["id"]}
    assert "Set-Cookie" not in response.headers
