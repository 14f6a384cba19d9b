"""The worker answers console requests (a target's check, a CRM search) with the adapter."""

from __future__ import annotations

from connector.adapters import AdapterError, CheckResult, CrmRecord
from connector.config.policy import DeliveryPolicy, MatchingPolicy
from connector.delivery.requests import RequestRunner
from connector.ledger.requests import CHECK, DONE, FAILED, SEARCH, Requests
from connector.services import Services
from tests.support.adapters import FakeCrm


class FailingCheck(FakeCrm):
    def check(self) -> list[CheckResult]:
        raise AdapterError("HubSpot answered 401")


def runner(services: Services, crm: FakeCrm) -> tuple[RequestRunner, Requests]:
    requests = Requests(services.ledger.engine)
    policy = DeliveryPolicy(matching=MatchingPolicy(objects=("contact",)))
    return RequestRunner(requests, {"crm": crm}, {"crm": policy}, 0.1), requests


def test_a_search_answers_rechecked_candidates(services: Services) -> None:
    crm = FakeCrm(
        [
            CrmRecord("contact", "K1", ("0211 63553400",), name="Erika Beispiel", owner_id="o1"),
            CrmRecord("contact", "AT", ("+43 211 63553400",), name="Other country"),
            CrmRecord("lead", "L1", ("0211 63553400",), name="Not searched"),
        ]
    )
    run, requests = runner(services, crm)
    request_id = requests.submit(SEARCH, "crm", {"number": "0211 635534-00"}, "otto")
    assert run.run_once() == 1
    answered = requests.get(request_id)
    assert answered is not None and answered.status == DONE
    assert answered.result is not None
    [found] = answered.result["candidates"]
    assert (found["type"], found["id"], found["name"], found["owner_id"]) == (
        "contact",
        "K1",
        "Erika Beispiel",
        "o1",
    )
    assert found["matched_number"] == "+4921163553400"
    assert run.run_once() == 0  # answered once


def test_check_results_and_failures_are_stored(services: Services) -> None:
    run, requests = runner(services, FakeCrm())
    ok = requests.submit(CHECK, "crm", {}, "otto")
    bad_number = requests.submit(SEARCH, "crm", {"number": "hello"}, "otto")
    unknown = requests.submit(CHECK, "gone", {}, "otto")
    run.run_once()
    assert requests.get(ok).result == {"results": [{"ok": True, "message": "fake"}]}  # type: ignore[union-attr]
    assert requests.get(bad_number).status == FAILED  # type: ignore[union-attr]
    assert requests.get(unknown).result == {"error": "No such target."}  # type: ignore[union-attr]
    latest = requests.latest(CHECK, "crm")
    assert latest is not None and latest.id == ok


def test_adapter_errors_become_a_failed_result(services: Services) -> None:
    run, requests = runner(services, FailingCheck())
    request_id = requests.submit(CHECK, "crm", {}, "otto")
    run.run_once()
    answered = requests.get(request_id)
    assert answered is not None
    assert (answered.status, answered.result) == (FAILED, {"error": "HubSpot answered 401"})


class NoNameSearch(FakeCrm):
    supports_name_search = False


def test_a_name_search_answers_every_record_with_those_words_unchecked(
    services: Services,
) -> None:
    crm = FakeCrm(
        [
            CrmRecord("contact", "K1", ("0211 63553400",), name="Erika Beispiel", owner_id="o1"),
            CrmRecord("contact", "K2", (), name="Max Beispielmann"),
            CrmRecord("contact", "K3", (), name="Erika Mustermann"),
            CrmRecord("lead", "L1", (), name="Erika Beispiel"),
        ]
    )
    run, requests = runner(services, crm)
    request_id = requests.submit(SEARCH, "crm", {"name": "beisp"}, "otto")
    both = requests.submit(SEARCH, "crm", {"name": "Erika Beispiel"}, "otto")
    run.run_once()
    answered, exact = requests.get(request_id), requests.get(both)
    assert answered is not None and answered.status == DONE and answered.result is not None
    # the policy's objects only (no lead), no number re-check (K2 has none), no match number
    assert [(c["id"], c["matched_number"]) for c in answered.result["candidates"]] == [
        ("K1", None),
        ("K2", None),
    ]
    assert exact is not None and exact.result is not None
    assert [c["id"] for c in exact.result["candidates"]] == ["K1"]


def test_a_name_search_on_a_target_without_it_fails_saying_so(services: Services) -> None:
    run, requests = runner(services, NoNameSearch([CrmRecord("contact", "K1", name="Erika")]))
    request_id = requests.submit(SEARCH, "crm", {"name": "Erika"}, "otto")
    run.run_once()
    answered = requests.get(request_id)
    assert answered is not None and answered.status == FAILED
    assert answered.result == {"error": "This target cannot search by name."}
