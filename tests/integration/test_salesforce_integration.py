"""The Salesforce adapter against the stateful HTTPS Salesforce test server, through the real
simple-salesforce and requests: the contract kit, phone search, composite writes, faults,
idempotency and the request budget.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from simple_salesforce.api import Salesforce

from connector.adapters import (
    Adapter,
    CrmRecord,
    DeliveryJob,
    Journal,
    MemoryMemo,
    PermanentError,
    RetryableError,
    TargetParked,
    TaskSpec,
)
from connector.adapters.salesforce import (
    DESCRIPTION_LIMIT,
    REQUEST_LIMIT_PARK,
    PolicyNeeds,
    SalesforceAdapter,
)
from connector.config.policy import DeliveryPolicy, MatchingPolicy
from connector.config.sections import TargetConfig
from connector.delivery.planning import plan_delivery
from connector.phone import PhoneNumber, parse_sipgate, same_number
from connector.render.sandbox import compile_templates
from connector.testing import AdapterContract, example_report
from tests.fakes.salesforce_schema import GERMAN_TASK_PRIORITIES, GERMAN_TASK_STATUSES
from tests.fakes.salesforce_server import SalesforceTestServer
from tests.support.metrics import crm_requests, logged_statuses

pytestmark = pytest.mark.integration

CALLER = "4921163553400"
EXPIRED = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


@pytest.fixture
def server() -> Iterator[SalesforceTestServer]:
    with SalesforceTestServer() as srv:
        yield srv


def number(digits: str = CALLER) -> PhoneNumber:
    parsed = parse_sipgate(digits)
    assert parsed is not None
    return parsed


def adapter_for(
    server: SalesforceTestServer, owners: dict[str, str] | None = None, **overrides: Any
) -> SalesforceAdapter:
    """An adapter for `server`; `owners` are the policy's owners `check` verifies."""
    loaded = SalesforceAdapter.config_schema().load(
        {
            "instance_url": server.instance_url,
            "auth": {
                "client_id": server.consumer_key,
                "client_secret": server.consumer_secret,
                "token_url": f"{server.instance_url}/services/oauth2/token",
            },
            "connect_timeout": 2,
            "read_timeout": 5,
            **overrides,
        }
    )
    return SalesforceAdapter(
        "salesforce",
        loaded,
        session=server.client_session(),
        needs=PolicyNeeds(owners=owners or {}),
    )


def call_tasks(server: SalesforceTestServer, call_id: str) -> list[dict[str, Any]]:
    return [
        t
        for t in server.records("Task")
        if t["CallObject"] == call_id and t["TaskSubtype"] == "Call"
    ]


def follow_ups(server: SalesforceTestServer) -> list[dict[str, Any]]:
    return [t for t in server.records("Task") if t["TaskSubtype"] != "Call"]


ACTION_ITEMS = (
    TaskSpec("Send plan options", "Send the options by e-mail.", date(2026, 4, 10), "high"),
    TaskSpec("Confirm the plan change", "", date(2026, 4, 14), "low"),
)


def matched_job(
    adapter: SalesforceAdapter, call_id: str = "sf-call-1", **changes: Any
) -> DeliveryJob:
    """A job for the example call as the pipeline builds it: search, matches, action items."""
    found = adapter.search_by_phone(number(), ["contact", "lead"])
    job = DeliveryJob(
        example_report(call_id), matches=tuple(found), tasks=ACTION_ITEMS, remote=number()
    )
    return replace(job, **changes)


class TestSalesforceContract(AdapterContract):
    """The adapter contract kit against the test server (a fresh, empty org per test)."""

    type_name = "salesforce"
    #: A 401 is an expired session: the adapter logs in again and the write goes through.
    error_statuses = {
        status: error for status, error in AdapterContract.error_statuses.items() if status != 401
    }

    @pytest.fixture(autouse=True)
    def _org(self, server: SalesforceTestServer) -> None:
        self.server = server

    def make_adapter(self, tmp_path: Path) -> Adapter:
        return adapter_for(self.server)

    def make_unreachable_adapter(self, tmp_path: Path) -> Adapter:
        loaded = SalesforceAdapter.config_schema().load(
            {
                "instance_url": "https://127.0.0.1:1",
                "auth": {"session_id": "00D-fictional-session"},
                "connect_timeout": 1,
                "read_timeout": 1,
            }
        )
        return SalesforceAdapter("salesforce", loaded)

    def count_logged_calls(self, adapter: Adapter, call_id: str) -> int:
        return len(call_tasks(self.server, call_id))

    def add_record(self, adapter: Adapter, number: PhoneNumber) -> CrmRecord:
        contact = self.server.add_contact(FirstName="Erika", LastName="Beispiel", Phone=number.e164)
        return CrmRecord("contact", contact, (number.e164,), name="Erika Beispiel")

    def fail_next_write(self, adapter: Adapter, status: int, echo: str) -> bool:
        body = [{"message": echo, "errorCode": "INVALID_INPUT"}]
        self.server.fail_next(r"/(sobjects/Task|composite)", status, body, method="POST")
        return True

    def lose_next_write_answer(self, adapter: Adapter) -> bool:
        self.server.lose_answer_after_commit(r"/(sobjects/Task|composite)", method="POST")
        return True


# --- search ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "stored"),
    [
        ("Phone", "0211 63553400"),
        ("MobilePhone", "+49 (211) 635534-00"),
        ("HomePhone", "0049 211 63553400"),
    ],
)
def test_sosl_finds_a_contact_whatever_the_format(
    server: SalesforceTestServer, field: str, stored: str
) -> None:
    account = server.add_account()
    wanted = server.add_contact(LastName="Beispiel", AccountId=account, **{field: stored})
    server.add_contact(LastName="Andere", Phone="0211 11111111")
    found = adapter_for(server).search_by_phone(number(), ["contact", "lead"])
    assert [(r.object_type, r.id) for r in found] == [("contact", wanted)]
    assert found[0].phones == (stored,)
    assert found[0].parent_id == account
    assert found[0].modified_at is not None and found[0].owner_id == server.integration_user_id
    assert same_number(stored, number(), "DE")
    assert len(server.requests(path_regex=r"/search")) == 1


def test_contacts_and_leads_are_both_returned_converted_leads_not(
    server: SalesforceTestServer,
) -> None:
    contact = server.add_contact(Phone="0211 63553400")
    lead = server.add_lead(MobilePhone="+49 211 63553400")
    server.add_lead(Phone="0211 63553400", IsConverted=True)
    found = adapter_for(server).search_by_phone(number(), [])
    assert sorted((r.object_type, r.id) for r in found) == [
        ("contact", contact),
        ("lead", lead),
    ]


def test_match_field_finds_a_contact_the_search_index_does_not_know_yet(
    server: SalesforceTestServer,
) -> None:
    server.add_field("Contact", "Phone_E164__c", "string", 40)
    server.search_lag_seconds = 600
    sf = Salesforce(
        instance_url=server.instance_url,
        session_id=server.issue_token(),
        session=server.client_session(),
    )
    created = sf.Contact.create({"LastName": "Neu", "Phone_E164__c": "+4921163553400"})["id"]
    assert adapter_for(server).search_by_phone(number(), ["contact"]) == []
    found = adapter_for(server, match_field="Phone_E164__c").search_by_phone(number(), ["contact"])
    assert [r.id for r in found] == [created]
    assert found[0].phones == ("+4921163553400",)


# --- writing --------------------------------------------------------------------------------------


def test_matched_call_with_action_items_is_one_composite_request(
    server: SalesforceTestServer,
) -> None:
    account = server.add_account()
    contact = server.add_contact(Phone="0211 63553400", AccountId=account)
    adapter = adapter_for(server)
    refs = adapter.write(matched_job(adapter), Journal()).refs
    [call] = call_tasks(server, "sf-call-1")
    assert call["Id"] == refs["task"]
    assert (call["WhoId"], call["WhatId"], call["Status"], call["IsClosed"]) == (
        contact,
        account,
        "Completed",
        True,
    )
    assert (call["CallType"], call["CallDurationInSeconds"], call["ActivityDate"]) == (
        "Inbound",
        83,
        "2026-04-08",
    )
    tasks = follow_ups(server)
    assert [t["Id"] for t in tasks] == refs["follow_ups"]
    assert [(t["Subject"], t["Priority"], t["Status"], t["IsClosed"]) for t in tasks] == [
        ("Send plan options", "High", "Not Started", False),
        ("Confirm the plan change", "Low", "Not Started", False),
    ]
    assert all(t["WhoId"] == contact for t in tasks)


def test_requests_per_matched_call_after_the_first_are_two(server: SalesforceTestServer) -> None:
    server.add_contact(Phone="0211 63553400", AccountId=server.add_account())
    adapter = adapter_for(server)
    adapter.write(matched_job(adapter, "first"), Journal())
    first = [(e.method, e.path.rsplit("/v59.0/", 1)[1]) for e in server.requests(kind="api")]
    assert first == [
        ("GET", "search/"),
        ("GET", "query/"),  # TaskStatus, once per adapter
        ("GET", "query/"),  # TaskPriority, once per adapter
        ("POST", "composite/sobjects"),
    ]
    for n in range(3):
        server.clear_request_log()
        adapter.write(matched_job(adapter, f"next-{n}"), Journal())
        sent = server.requests(kind="api")
        assert [(e.method, e.path.rsplit("/v59.0/", 1)[1]) for e in sent] == [
            ("GET", "search/"),
            ("POST", "composite/sobjects"),
        ]
    assert len(server.records("Task")) == 4 * 3


def test_every_request_to_salesforce_is_counted_for_the_target_by_status(
    server: SalesforceTestServer,
) -> None:
    before = crm_requests("salesforce")
    server.add_contact(Phone="0211 63553400")
    adapter = adapter_for(server)
    job = matched_job(adapter)
    journal = Journal()
    server.fail_next(r"/composite/sobjects", 503, method="POST")
    with pytest.raises(RetryableError):
        adapter.write(job, journal)
    server.lose_answer_after_commit(r"/composite/sobjects", method="POST")
    with pytest.raises(RetryableError):
        adapter.write(job, journal)
    adapter.write(job, journal)
    adapter.close()
    answered = [e.status for e in server.request_log if not e.lost]
    counted = crm_requests("salesforce")
    counted.subtract(before)
    assert +counted == {**logged_statuses(answered), "connection_error": 1}
    assert counted["503"] == 1 and counted["200"] >= 3  # the login, the search, the lookup


def test_german_org_values(tmp_path: Path) -> None:
    with SalesforceTestServer(
        task_statuses=GERMAN_TASK_STATUSES, task_priorities=GERMAN_TASK_PRIORITIES
    ) as german:
        german.add_contact(Phone="0211 63553400")
        adapter = adapter_for(german)
        adapter.write(matched_job(adapter), Journal())
        [call] = call_tasks(german, "sf-call-1")
        assert (call["Status"], call["IsClosed"]) == ("Erledigt", True)
        assert [(t["Status"], t["Priority"], t["IsClosed"]) for t in follow_ups(german)] == [
            ("Offen", "Hoch", False),
            ("Offen", "Niedrig", False),
        ]


def test_a_huge_transcript_never_makes_a_string_too_long(server: SalesforceTestServer) -> None:
    contact = server.add_contact(Phone="0211 63553400")
    adapter = adapter_for(server)
    line = "Caller: Guten Tag, ich rufe wegen meiner Rechnung an & möchte <den Tarif> wechseln.\n"
    transcript = (line * (200_000 // len(line) + 1))[:200_000]
    job = matched_job(
        adapter,
        fields={"Subject": "Rechnung " * 200, "Description": transcript},
        overflow=transcript,
    )
    refs = adapter.write(job, Journal()).refs
    [call] = call_tasks(server, "sf-call-1")
    assert len(call["Description"]) <= DESCRIPTION_LIMIT
    assert len(call["Subject"]) <= 255
    note = server.get_record(refs["note"])
    assert note is not None
    content = base64.b64decode(note["Content"]).decode()
    assert content.startswith("<p>Caller: Guten Tag, ich rufe wegen meiner Rechnung an &amp; ")
    assert "&lt;den Tarif&gt;" in content
    assert note["Title"].endswith("(sipgate call sf-call-1)")
    [link] = server.records("ContentDocumentLink")
    assert (link["ContentDocumentId"], link["LinkedEntityId"]) == (refs["note"], contact)
    assert refs["note_link"] == link["Id"]


def test_open_opportunity_rule(server: SalesforceTestServer) -> None:
    account = server.add_account()
    server.add_contact(Phone="0211 63553400", AccountId=account)
    server.add_opportunity(AccountId=account, LastModifiedDate="2026-01-01T10:00:00.000+0000")
    newest = server.add_opportunity(
        AccountId=account, LastModifiedDate="2026-03-01T10:00:00.000+0000"
    )
    server.add_opportunity(
        AccountId=account, StageName="Closed Won", LastModifiedDate="2026-04-01T10:00:00.000+0000"
    )
    adapter = adapter_for(server, what_rule="open_opportunity")
    adapter.write(matched_job(adapter, "warm-up"), Journal())
    server.clear_request_log()
    adapter.write(matched_job(adapter), Journal())
    [call] = call_tasks(server, "sf-call-1")
    assert call["WhatId"] == newest and call["AccountId"] == account
    assert len(server.requests(kind="api")) == 3  # search, Opportunity query, composite


def test_case_for_calls_on_the_support_channel(server: SalesforceTestServer) -> None:
    contact = server.add_contact(Phone="0211 63553400")
    adapter = adapter_for(server, case={"channels": ["Support Channel"]})
    refs = adapter.write(matched_job(adapter, tasks=()), Journal()).refs
    [case] = server.records("Case")
    assert case["Id"] == refs["case"]
    assert (case["Subject"], case["Origin"], case["ContactId"], case["Status"]) == (
        "Invoice inquiry and plan change (sipgate call sf-call-1)",
        "Phone",
        contact,
        "New",
    )


def test_validation_rules_make_the_delivery_dead_with_their_message(
    server: SalesforceTestServer,
) -> None:
    server.add_validation_rule(
        "Task", lambda task: not task.get("WhoId"), "Bitte einen Kontakt angeben", "WhoId"
    )
    with pytest.raises(PermanentError, match="FIELD_CUSTOM_VALIDATION_EXCEPTION: Bitte einen"):
        adapter_for(server).write(DeliveryJob(example_report()), Journal())


# --- partial failures and idempotency -------------------------------------------------------------


def lock_once(server: SalesforceTestServer, subject: str) -> None:
    """Make the write of the Task with `subject` fail once with UNABLE_TO_LOCK_ROW.

    The server's record faults hit the next record written; a validation rule that never fails
    arms one right before the wanted record's fault check.
    """
    armed: list[bool] = []

    def arm(task: dict[str, Any]) -> bool:
        if task.get("Subject") == subject and not armed:
            armed.append(True)
            server.fail_next_record(
                "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record"
            )
        return False

    server.add_validation_rule("Task", arm, "never shown")


def test_a_locked_follow_up_is_retried_alone(server: SalesforceTestServer) -> None:
    server.add_contact(Phone="0211 63553400")
    adapter = adapter_for(server)
    lock_once(server, "Send plan options")
    job = matched_job(adapter)
    journal = Journal()
    with pytest.raises(RetryableError, match="UNABLE_TO_LOCK_ROW"):
        adapter.write(job, journal)
    assert len(call_tasks(server, "sf-call-1")) == 1
    assert [t["Subject"] for t in follow_ups(server)] == ["Confirm the plan change"]
    server.clear_request_log()
    refs = adapter.write(job, Journal(journal.as_dict())).refs
    [retry] = server.requests(path_regex=r"/composite/sobjects")
    assert [r["Subject"] for r in retry.json["records"]] == ["Send plan options"]
    assert len(call_tasks(server, "sf-call-1")) == 1
    assert sorted(t["Subject"] for t in follow_ups(server)) == [
        "Confirm the plan change",
        "Send plan options",
    ]
    assert None not in refs["follow_ups"]


def test_a_lost_answer_is_found_by_call_object_on_retry(server: SalesforceTestServer) -> None:
    server.add_contact(Phone="0211 63553400")
    adapter = adapter_for(server, read_timeout=0.5)
    job = matched_job(adapter)
    server.delay_after_commit(r"/composite/sobjects", 2.0)
    journal = Journal()
    with pytest.raises(RetryableError, match="outcome unknown"):
        adapter.write(job, journal)
    assert journal.get("task_pending") is True
    assert len(server.records("Task")) == 3  # committed although the answer was lost
    server.clear_request_log()
    refs = adapter.write(job, Journal(journal.as_dict())).refs
    assert server.requests(path_regex=r"/composite/sobjects") == []
    [lookup] = server.requests(path_regex=r"/query")
    assert "CallObject IN" in lookup.query["q"][0]
    assert len(call_tasks(server, "sf-call-1")) == 1
    assert len(server.records("Task")) == 3
    assert refs["task"] == call_tasks(server, "sf-call-1")[0]["Id"]
    assert sorted(refs["follow_ups"]) == sorted(t["Id"] for t in follow_ups(server))


def test_a_lost_answer_with_note_and_case_is_found_on_retry(server: SalesforceTestServer) -> None:
    contact = server.add_contact(Phone="0211 63553400")
    adapter = adapter_for(server, read_timeout=0.5, case={"channels": ["Support Channel"]})
    job = matched_job(adapter, overflow="Caller: the rest of the transcript")
    server.delay_after_commit(r"/composite/sobjects", 2.0)
    journal = Journal()
    with pytest.raises(RetryableError, match="outcome unknown"):
        adapter.write(job, journal)
    assert server.records("ContentDocumentLink") == []
    refs = adapter.write(job, Journal(journal.as_dict())).refs
    assert len(server.records("Task")) == 3
    [note] = server.records("ContentNote")
    [case] = server.records("Case")
    [link] = server.records("ContentDocumentLink")
    assert (refs["note"], refs["case"], refs["note_link"]) == (note["Id"], case["Id"], link["Id"])
    assert link["LinkedEntityId"] == contact
    adapter.write(job, Journal(journal.as_dict()))
    assert len(server.records("ContentNote")) == len(server.records("Case")) == 1


def test_more_than_200_records_are_sent_in_chunks(server: SalesforceTestServer) -> None:
    adapter = adapter_for(server)
    many = tuple(TaskSpec(f"Item {n}", "", date(2026, 4, 10)) for n in range(250))
    refs = adapter.write(DeliveryJob(example_report(), tasks=many), Journal()).refs
    assert [len(e.json["records"]) for e in server.requests(path_regex=r"/composite/sobjects")] == [
        200,
        51,
    ]
    assert len(set(refs["follow_ups"])) == 250 and len(server.records("Task")) == 251


def test_a_5xx_before_processing_is_retried_without_duplicates(
    server: SalesforceTestServer,
) -> None:
    adapter = adapter_for(server)
    server.fail_next(r"/composite/sobjects", 503, "<html>Service Unavailable</html>")
    journal = Journal()
    with pytest.raises(RetryableError, match="HTTP 503"):
        adapter.write(DeliveryJob(example_report()), journal)
    assert server.records("Task") == []
    adapter.write(DeliveryJob(example_report()), Journal(journal.as_dict()))
    adapter.write(DeliveryJob(example_report()), Journal(journal.as_dict()))
    assert len(server.records("Task")) == 1


# --- sessions and limits --------------------------------------------------------------------------


def test_an_expired_session_is_renewed_once(server: SalesforceTestServer) -> None:
    adapter = adapter_for(server)
    adapter.write(DeliveryJob(example_report("one")), Journal())
    server.expire_sessions()
    adapter.write(DeliveryJob(example_report("two")), Journal())
    assert len(server.requests(kind="auth")) == 2
    assert len(server.records("Task")) == 2


def test_refused_logins_after_expiry_are_permanent(server: SalesforceTestServer) -> None:
    adapter = adapter_for(server)
    adapter.write(DeliveryJob(example_report("one")), Journal())
    server.expire_sessions()
    server.refuse_logins()
    with pytest.raises(PermanentError, match="invalid_grant"):
        adapter.write(DeliveryJob(example_report("two")), Journal())
    assert len(server.records("Task")) == 1


def test_invalid_session_twice_is_not_chased(server: SalesforceTestServer) -> None:
    adapter = adapter_for(server)
    server.fail_next(r"/composite/sobjects", 401, EXPIRED, count=10)
    with pytest.raises(RetryableError, match="INVALID_SESSION_ID again"):
        adapter.write(DeliveryJob(example_report()), Journal())
    assert len(server.requests(path_regex=r"/composite/sobjects")) == 2
    assert len(server.requests(kind="auth")) == 2


def test_request_limit_parks_the_target(server: SalesforceTestServer) -> None:
    adapter = adapter_for(server)
    server.set_api_usage(14_990, 15_000)
    adapter.search_by_phone(number(), [])
    server.exhaust_api_limit()
    before = datetime.now(UTC)
    with pytest.raises(TargetParked) as exc:
        adapter.write(DeliveryJob(example_report()), Journal())
    assert before + REQUEST_LIMIT_PARK <= exc.value.until <= datetime.now(UTC) + REQUEST_LIMIT_PARK
    assert "REQUEST_LIMIT_EXCEEDED" in str(exc.value) and "14991/15000" in str(exc.value)
    assert server.records("Task") == []


def test_jwt_bearer_login(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_file = tmp_path / "integration.key"
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with SalesforceTestServer(jwt_public_key=public) as jwt_server:
        auth = {
            "consumer_key": jwt_server.consumer_key,
            "username": jwt_server.integration_username,
            "private_key_file": str(key_file),
            "token_url": f"{jwt_server.instance_url}/services/oauth2/token",
        }
        adapter = adapter_for(jwt_server, auth=auth)
        adapter.write(DeliveryJob(example_report()), Journal())
        assert len(jwt_server.records("Task")) == 1
        [login] = jwt_server.requests(kind="auth")
        assert login.form is not None
        assert login.form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
        wrong = adapter_for(jwt_server, auth={**auth, "username": "unknown@example.com"})
        with pytest.raises(PermanentError, match="invalid_grant"):
            wrong.write(DeliveryJob(example_report("two")), Journal())


# --- leads for unknown callers --------------------------------------------------------------------


def test_a_repeat_caller_gets_the_same_lead_while_sosl_lags(server: SalesforceTestServer) -> None:
    server.search_lag_seconds = 900
    memo = MemoryMemo()
    first, second = adapter_for(server), adapter_for(server)  # two workers, one ledger memo
    first.bind_memo(memo)
    second.bind_memo(memo)
    unknown = number("4930901820")
    assert first.search_by_phone(unknown, []) == []
    lead = first.create_record("lead", unknown, {}, Journal())
    assert second.search_by_phone(unknown, []) == []  # the index has not caught up
    again = second.create_record("lead", unknown, {}, Journal())
    assert again.id == lead.id
    [stored] = server.records("Lead")
    assert (stored["Id"], stored["Phone"], stored["LastName"], stored["Company"]) == (
        lead.id,
        "+49 30 901820",
        "Unknown caller",
        "Unknown company",
    )
    job = DeliveryJob(example_report(), matches=(again,), tasks=ACTION_ITEMS)
    second.write(job, Journal())
    assert all(t["WhoId"] == lead.id and t["WhatId"] is None for t in server.records("Task"))


# --- check ----------------------------------------------------------------------------------------


def test_check_names_each_problem(server: SalesforceTestServer) -> None:
    inactive = server.add_user(Email="former@example.com", IsActive=False)
    active = server.add_user(Email="active@example.com")
    adapter = adapter_for(
        server,
        external_id_field="Sipgate_Call_Id__c",
        match_field="Phone_E164__c",
        owners={"w0": active, "w1": "former@example.com", "w2": "nobody@example.com"},
    )
    failures = [r.message for r in adapter.check() if not r.ok]
    assert failures == [
        "Task.Sipgate_Call_Id__c does not exist or is not visible to the integration user.",
        "Contact.Phone_E164__c (match_field) does not exist.",
        "Lead.Phone_E164__c (match_field) does not exist.",
        f"Owner of sipgate user w1: User {inactive} is inactive.",
        "Owner of sipgate user w2: no Salesforce User the mapped e-mail address.",
    ]
    server.add_field("Task", "Sipgate_Call_Id__c", "string", 64, external_id=True, unique=True)
    server.add_field("Contact", "Phone_E164__c", "string", 40)
    server.add_field("Lead", "Phone_E164__c", "string", 40)
    healthy = adapter_for(server, external_id_field="Sipgate_Call_Id__c", owners={"w0": active})
    assert all(r.ok for r in healthy.check())


# --- retries re-planned like the pipeline does ---------------------------------------------------

DOWN = [{"message": "down", "errorCode": "SERVER_UNAVAILABLE"}]


def test_a_replanned_retry_logs_on_the_first_attempts_contact_and_account(
    server: SalesforceTestServer,
) -> None:
    account = server.add_account(Name="Beispiel GmbH")
    contact = server.add_contact(LastName="Beispiel", Phone="+49 211 63553400", AccountId=account)
    adapter = adapter_for(server)
    policy = DeliveryPolicy(matching=MatchingPolicy(objects=("contact", "lead", "account")))
    report = example_report("sf-retry-1")
    journal = Journal()
    server.fail_next(r"/composite/sobjects", 503, DOWN)
    with pytest.raises(RetryableError, match="HTTP 503"):
        adapter.write(plan_delivery(report, policy, adapter, journal).job, journal)  # type: ignore[arg-type]
    [first] = [e.json["records"][0] for e in server.requests(path_regex=r"/composite/sobjects")]
    assert (first["WhoId"], first["WhatId"]) == (contact, account)
    server.add_record("Contact", LastName="Zweiter", Phone="+49 211 63553400")  # a new candidate
    retry = Journal(journal.as_dict())  # the pipeline re-plans; only the journal is reused
    plan = plan_delivery(report, policy, adapter, retry)
    assert plan.job is not None
    adapter.write(plan.job, retry)
    [call] = call_tasks(server, "sf-retry-1")
    assert (call["WhoId"], call["WhatId"]) == (first["WhoId"], first["WhatId"])


def lose_answer(server: SalesforceTestServer) -> None:
    """The next composite create is committed, but its answer comes after the read timeout."""
    server.delay_after_commit(r"/composite/sobjects", 2.0)


def test_a_lost_answer_is_reconciled_by_call_id_although_the_subject_changed(
    server: SalesforceTestServer,
) -> None:
    server.add_contact(FirstName="Max", LastName="Beispiel", Phone="0211 63553400")
    adapter = adapter_for(server, read_timeout=0.5, case={"channels": ["Support Channel"]})
    first = matched_job(adapter, tasks=(), overflow="Caller: the rest", fields={"Subject": "Erst"})
    lose_answer(server)
    journal = Journal()
    with pytest.raises(RetryableError, match="outcome unknown"):
        adapter.write(first, journal)
    assert journal.get("pending_markers") == {
        "task": "sf-call-1",
        "note": "(sipgate call sf-call-1)",
        "case": "(sipgate call sf-call-1)",
    }
    server.clear_request_log()
    # The retry renders another subject (a template over data that changed in between).
    again = replace(first, fields={"Subject": "Anders"})
    refs = adapter.write(again, Journal(journal.as_dict())).refs
    [note] = server.records("ContentNote")
    [case] = server.records("Case")
    assert (refs["note"], refs["case"]) == (note["Id"], case["Id"])
    assert note["Title"] == case["Subject"] == "Erst (sipgate call sf-call-1)"
    lookups = [e.query["q"][0] for e in server.requests(path_regex=r"/query")]
    assert any(
        "FROM ContentNote WHERE Title LIKE '%(sipgate call sf-call-1)'" in q for q in lookups
    )
    assert any("FROM Case WHERE Subject LIKE '%(sipgate call sf-call-1)'" in q for q in lookups)
    assert not any("Erst" in q or "Anders" in q for q in lookups)
    [link] = server.requests(path_regex=r"/composite/sobjects$")  # only the note's link was missing
    assert [r["attributes"]["type"] for r in link.json["records"]] == ["ContentDocumentLink"]


def test_a_retry_never_adopts_the_case_of_another_call(server: SalesforceTestServer) -> None:
    server.add_contact(LastName="Beispiel", Phone="0211 63553400")
    adapter = adapter_for(server, case={"channels": ["Support Channel"]})
    job_a = matched_job(adapter, "call-A", tasks=())
    job_b = matched_job(adapter, "call-B", tasks=())  # same contact, same subject, same minute
    journal_a = Journal()
    server.fail_next(
        r"/composite/sobjects", 500, [{"message": "x", "errorCode": "UNKNOWN_EXCEPTION"}]
    )
    with pytest.raises(RetryableError):
        adapter.write(job_a, journal_a)
    assert journal_a.get("task_pending") is True
    refs_b = adapter.write(job_b, Journal()).refs
    refs_a = adapter.write(job_a, Journal(journal_a.as_dict())).refs
    assert refs_a["case"] != refs_b["case"]
    subjects = {c["Id"]: c["Subject"] for c in server.records("Case")}
    assert subjects == {
        refs_a["case"]: "Invoice inquiry and plan change (sipgate call call-A)",
        refs_b["case"]: "Invoice inquiry and plan change (sipgate call call-B)",
    }


# --- phone fields ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sobject", "field"),
    [("Contact", "AssistantPhone"), ("Contact", "Fax"), ("Lead", "Fax"), ("Account", "Fax")],
)
def test_a_hit_in_any_standard_phone_field_passes_the_recheck(
    server: SalesforceTestServer, sobject: str, field: str
) -> None:
    extra = {"Company": "Beispiel GmbH", "LastName": "B"} if sobject == "Lead" else {}
    extra = {"LastName": "B"} if sobject == "Contact" else extra
    extra = {"Name": "Beispiel GmbH"} if sobject == "Account" else extra
    wanted = server.add_record(sobject, **extra, **{field: "+49 211 63553400"})
    adapter = adapter_for(server, search_objects=["contact", "lead", "account"])
    [hit] = adapter.search_by_phone(number(), ["contact", "lead", "account"])
    assert (hit.id, hit.phones) == (wanted, ("+49 211 63553400",))


def test_a_known_contact_reached_on_the_assistant_phone_gets_no_lead(
    server: SalesforceTestServer,
) -> None:
    contact = server.add_contact(LastName="Beispiel", AssistantPhone="+49 211 63553400")
    adapter = adapter_for(server)
    policy = DeliveryPolicy(
        matching=MatchingPolicy(objects=("contact", "lead"), on_no_match="create_lead")
    )
    plan = plan_delivery(example_report("sf-asst"), policy, adapter, Journal())
    assert plan.match is not None and plan.match.status == "matched"
    assert [(r.object_type, r.id) for r in plan.match.records] == [("contact", contact)]
    assert server.records("Lead") == []


# --- field lengths --------------------------------------------------------------------------------


def test_mapped_custom_fields_are_cut_to_their_length(server: SalesforceTestServer) -> None:
    server.add_field("Task", "Call_Summary__c", length=255)
    server.add_contact(LastName="Beispiel", Phone="+49 211 63553400")
    adapter = adapter_for(server)
    fields, problems = compile_templates({"Call_Summary__c": "{{ summary }} {{ transcript }}"})
    assert problems == []
    policy = DeliveryPolicy(
        fields=fields, transcript="full", matching=MatchingPolicy(objects=("contact", "lead"))
    )
    for call_id in ("sf-long-1", "sf-long-2"):
        journal = Journal()
        plan = plan_delivery(example_report(call_id), policy, adapter, journal)
        assert plan.job is not None and len(plan.job.fields["Call_Summary__c"]) > 255
        adapter.write(plan.job, journal)
        [call] = call_tasks(server, call_id)
        assert len(call["Call_Summary__c"]) == 255 and call["Call_Summary__c"].endswith("…")
    assert len(server.requests(path_regex=r"/sobjects/Task/describe")) == 1  # once per adapter
    # `check` as `from_config` builds it (with the mapped fields), on the test server's session.
    needs = SalesforceAdapter.from_config(
        TargetConfig("salesforce", "salesforce", adapter.options, policy)
    ).needs
    checked = SalesforceAdapter(
        "salesforce", adapter.options, session=server.client_session(), needs=needs
    )
    messages = [r.message for r in checked.check() if r.ok]
    assert (
        "Task.Call_Summary__c (mapped) holds at most 255 characters: longer rendered values are "
        "cut to that."
    ) in messages


def test_known_fields_need_no_describe(server: SalesforceTestServer) -> None:
    server.add_contact(Phone="0211 63553400")
    adapter = adapter_for(server)
    adapter.write(
        matched_job(adapter, fields={"Subject": "S", "ActivityDate": "2026-04-08"}), Journal()
    )
    assert server.requests(path_regex=r"/describe") == []


def test_mapped_lead_fields_are_cut_to_their_length(server: SalesforceTestServer) -> None:
    server.add_field("Lead", "Caller_Note__c", length=20)
    adapter = adapter_for(server)
    fields = {"Caller_Note__c": "Rief wegen der Rechnung an und will zurückgerufen werden"}
    lead = adapter.create_record("lead", number(), {**fields, "LastName": "L" * 100}, Journal())
    stored = server.get_record(lead.id)
    assert stored is not None
    assert len(stored["Caller_Note__c"]) == 20 and stored["Caller_Note__c"].endswith("…")
    assert len(stored["LastName"]) == 80


# --- leads ----------------------------------------------------------------------------------------


def test_a_remembered_lead_that_was_deleted_is_not_reused(server: SalesforceTestServer) -> None:
    server.search_lag_seconds = 900
    memo = MemoryMemo()
    adapter = adapter_for(server)
    adapter.bind_memo(memo)
    first = adapter.create_record("lead", number(), {}, Journal())
    sf = Salesforce(
        instance_url=server.instance_url,
        session_id=server.issue_token(),
        session=server.client_session(),
    )
    sf.Lead.delete(first.id)
    again = adapter.create_record("lead", number(), {}, Journal())
    assert again.id != first.id
    assert [lead["Id"] for lead in server.records("Lead")] == [again.id]


def test_a_lead_gets_match_field_and_is_found_by_it_after_a_lost_answer(
    server: SalesforceTestServer,
) -> None:
    server.add_field("Lead", "Phone_E164__c", "string", 40)
    adapter = adapter_for(
        server, match_field="Phone_E164__c", search_objects=["lead"], read_timeout=0.5
    )
    server.delay_after_commit(r"/sobjects/Lead", 2.0)
    journal = Journal()
    with pytest.raises(RetryableError, match="outcome unknown"):
        adapter.create_record("lead", number(), {}, journal)
    [created] = server.records("Lead")
    assert created["Phone_E164__c"] == "+4921163553400"
    server.clear_request_log()
    again = adapter.create_record("lead", number(), {}, Journal(journal.as_dict()))
    assert again.id == created["Id"] and len(server.records("Lead")) == 1
    [lookup] = [e.query["q"][0] for e in server.requests(path_regex=r"/query")]
    assert "WHERE Phone_E164__c = '+4921163553400' AND IsConverted = false" in lookup
    assert adapter.search_by_phone(number(), [])[0].id == created["Id"]  # found at once
