"""The MiniCRM adapter's contract tests: a fake MiniCRM on `ResponsesTarget`, and the suite."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from minicrm_adapter import SCOPES, MiniCrmAdapter

from connector.adapters import Adapter, CrmRecord, PhoneNumber
from connector.testing import AdapterContract, FakeRequest, ResponsesTarget

BASE_URL = "https://api.minicrm.invalid/v1"
TOKEN = "mc-live-8f3a9c2e7b1d4f60a5e9"  # noqa: S105 - the fake CRM's fictional token


class FakeMiniCrm:
    """MiniCRM's API in memory: persons, activities, tasks and users, with their searches."""

    def __init__(self) -> None:
        self.target = ResponsesTarget(BASE_URL)
        self.objects: dict[str, list[dict[str, Any]]] = {"persons": [], "activities": []}
        self.objects.update(tasks=[], users=[{"id": "u1", "email": "ops@example.com"}])
        self.ids = itertools.count(1)
        self.target.route("GET", "/me", self._me)
        for kind in self.objects:
            self.target.route("GET", f"/({kind})", self._search)
            self.target.route("POST", f"/({kind})", self._create)

    def add_person(self, name: str, phone: str) -> str:
        return self._create(
            FakeRequest("POST", "/persons", {}, {"name": name, "phone": phone}, {}, ("persons",))
        )[1]["data"]["id"]

    def count(self, kind: str, external_id_prefix: str) -> int:
        return sum(
            str(o.get("external_id", "")).startswith(external_id_prefix) for o in self.objects[kind]
        )

    def _authorised(self, request: FakeRequest) -> bool:
        return request.headers.get("Authorization") == f"Bearer {TOKEN}"

    def _me(self, request: FakeRequest) -> tuple[int, Any]:
        if not self._authorised(request):
            return 401, {"code": "UNAUTHORIZED"}
        return 200, {"id": "u1", "scopes": sorted(SCOPES)}

    def _search(self, request: FakeRequest) -> tuple[int, Any]:
        found = [
            o
            for o in self.objects[request.groups[0]]
            if all(str(o.get(k)) == v for k, v in request.params.items())
        ]
        return 200, {"data": found}

    def _create(self, request: FakeRequest) -> tuple[int, Any]:
        created = {**request.body, "id": f"o{next(self.ids)}"}
        self.objects[request.groups[0]].append(created)
        return 201, {"data": created}


class TestMiniCrmContract(AdapterContract):
    """Every behaviour of the contract, against the fake MiniCRM."""

    type_name = "minicrm"
    registered_as = "minicrm_adapter:MiniCrmAdapter"

    @pytest.fixture(autouse=True)
    def _crm(self) -> Iterator[None]:
        self.crm = FakeMiniCrm()
        with self.crm.target:
            yield

    def make_adapter(self, tmp_path: Path) -> Adapter:
        options = {"api_token": TOKEN, "base_url": BASE_URL}
        return MiniCrmAdapter("minicrm", MiniCrmAdapter.config_schema().load(options))

    def make_unreachable_adapter(self, tmp_path: Path) -> Adapter:
        options = {"api_token": TOKEN, "base_url": "https://down.minicrm.invalid/v1"}
        return MiniCrmAdapter("minicrm", MiniCrmAdapter.config_schema().load(options))

    def count_logged_calls(self, adapter: Adapter, call_id: str) -> int:
        return sum(a["external_id"] == call_id for a in self.crm.objects["activities"])

    def count_tasks(self, adapter: Adapter, call_id: str) -> int:
        return self.crm.count("tasks", f"{call_id}#")

    def add_record(self, adapter: Adapter, number: PhoneNumber) -> CrmRecord:
        person = self.crm.add_person("Erika Beispiel", number.e164)
        return CrmRecord("person", person, (number.e164,), name="Erika Beispiel")

    def owner_id(self, adapter: Adapter) -> str:
        return "u1"

    def fail_next_write(self, adapter: Adapter, status: int, echo: str) -> bool:
        self.crm.target.fail_next("POST", "^/activities$", status, {"code": "E1", "message": echo})
        return True

    def lose_next_write_answer(self, adapter: Adapter) -> bool:
        self.crm.target.lose_next("POST", "^/activities$")
        return True

    def secrets(self, adapter: Adapter) -> list[str]:
        return [TOKEN]
