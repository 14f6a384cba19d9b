"""Baseline WSGI apps the webhook benchmark compares the service against (served by gunicorn).

* `bare_app`: reads the body and answers 204 — the cost of HTTP and gunicorn alone.
* `durable_insert_app`: reads the body and commits it in one SQLite insert with the ledger's
  durability settings (WAL, ``synchronous=FULL``) — the floor for "answered only once on disk".
* `same_stack_app`: the same stack as the service without its features — Flask, the product's
  JSON decoding and marshmallow validation (`connector.payload.parse_body`), and one raw SQLite
  insert with ``synchronous=FULL`` — the floor the service itself is measured against.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, request

from connector.payload import PayloadError, parse_body

StartResponse = Callable[..., Any]
_local = threading.local()


def _read(environ: dict[str, Any]) -> bytes:
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    if length:
        return stream.read(int(length))  # type: ignore[no-any-return]
    return stream.read()  # type: ignore[no-any-return]


def bare_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Read the body, answer 204."""
    _read(environ)
    start_response("204 No Content", [])
    return [b""]


def _connection() -> sqlite3.Connection:
    conn: sqlite3.Connection | None = getattr(_local, "conn", None)
    if conn is None:
        conn = sqlite3.connect(os.environ["BENCH_SQLITE"], timeout=15, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=" + os.environ.get("BENCH_SYNCHRONOUS", "FULL"))
        conn.execute("CREATE TABLE IF NOT EXISTS bodies (id INTEGER PRIMARY KEY, body BLOB)")
        _local.conn = conn
    return conn


def durable_insert_app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """Read the body, commit it in one durable insert, answer 200."""
    body = _read(environ)
    conn = _connection()
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO bodies (body) VALUES (?)", (body,))
    conn.execute("COMMIT")
    start_response("200 OK", [("Content-Type", "application/json")])
    return [b'{"status":"accepted"}']


same_stack_app = Flask("same-stack-floor")


@same_stack_app.post("/webhooks/sipgate")
def _same_stack_receive() -> tuple[dict[str, str], int]:
    """Decode, validate with the product's schema, commit the body in one durable insert."""
    body = request.get_data()
    try:
        report = parse_body(body)
    except PayloadError:
        return {"error": "invalid_payload"}, 422
    conn = _connection()
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO bodies (body) VALUES (?)", (body,))
    conn.execute("COMMIT")
    return {"status": "accepted", "call_id": report.call_id}, 200
