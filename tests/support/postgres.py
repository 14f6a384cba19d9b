"""A throw-away PostgreSQL database per test, and the contract suite of a target on one.

They run where `SIPGATE_TEST_POSTGRES_URL` names a role allowed to create databases (`.ci/run`
starts a server and sets it); elsewhere they are skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from connector.adapters import Adapter
from connector.testing import AdapterContract

POSTGRES = os.environ.get("SIPGATE_TEST_POSTGRES_URL")
needs_postgres = pytest.mark.skipif(not POSTGRES, reason="SIPGATE_TEST_POSTGRES_URL not set")
#: A PostgreSQL URL nobody answers on.
UNREACHABLE_POSTGRES = "postgresql+psycopg://nobody@127.0.0.1:1/none"


def fresh_database() -> Iterator[str]:
    """Yield the URL of a new, empty database; drop it when resumed."""
    assert POSTGRES
    name = f"connector_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(POSTGRES).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


class PostgresTargetContract(AdapterContract):
    """The contract suite of a SQL target writing to a fresh PostgreSQL database per test.

    Subclasses give `build(url)`: the adapter writing to `url`. Every adapter built is closed
    before its database is dropped.
    """

    def build(self, url: str) -> Adapter:
        raise NotImplementedError

    @pytest.fixture(autouse=True)
    def _database(self) -> Iterator[None]:
        database = fresh_database()
        self.url = next(database)
        self.adapters: list[Adapter] = []
        yield
        for adapter in self.adapters:
            adapter.close()
        next(database, None)

    def make_adapter(self, tmp_path: Path) -> Adapter:
        adapter = self.build(self.url)
        self.adapters.append(adapter)
        return adapter

    def make_unreachable_adapter(self, tmp_path: Path) -> Adapter:
        return self.build(UNREACHABLE_POSTGRES)
