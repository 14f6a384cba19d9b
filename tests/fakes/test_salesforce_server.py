"""Tests for ``SalesforceTestServer`` driven by the real simple-salesforce client over HTTPS.

They double as executable documentation of simple-salesforce 1.12 behaviour the Salesforce
adapter relies on (exception per status, re-login on ``INVALID_SESSION_ID``, timeouts).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import certifi
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from .salesforce_schema import GERMAN_TASK_PRIORITIES, GERMAN_TASK_STATUSES
from .salesforce_server import (
    SalesforceTestServer,
    TimeoutHTTPAdapter,
    to_18_char_id,
)

CALL_ID = "sipgate-call-0f1e2d3c"


@pytest.fixture
def server() -> Iterator[SalesforceTestServer]:
    with SalesforceTestServer() as srv:
        yield srv


def connect(server: SalesforceTestServer, session: requests.Session | None = None) -> Salesforce:
    """simple-salesforce with a session id, as the adapter will construct it."""
    if session is None:
        session = server.client_session()
    return Salesforce(
        instance_url=server.instance_url, session_id=server.issue_token(), session=session
    )


@pytest.fixture
def sf(server: SalesforceTestServer) -> Salesforce:
    return connect(server)


def error_of(exc: pytest.ExceptionInfo[Any]) -> dict[str, Any]:
    content = exc.value.content
    assert isinstance(content, list), content
    first: dict[str, Any] = content[0]
    return first


# --------------------------------------------------------------------------- basics


def test_id_checksum_matches_documented_example() -> None:
    # Example id from Salesforce's REST "Search for a String" documentation.
    assert to_18_char_id("001D000000IqhSL") == "001D000000IqhSLIAZ"


def test_session_verify_loses_against_requests_ca_bundle(
    server: SalesforceTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # requests prefers REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE over Session.verify when
    # trust_env is on (psf/requests#3829), so "Session(verify=ca)" alone is not enough.
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", certifi.where())
    plain = requests.Session()
    plain.verify = server.ca_bundle_path
    with pytest.raises(requests.exceptions.SSLError):
        connect(server, plain).query("SELECT Id FROM User")
    plain.trust_env = False
    assert connect(server, plain).query("SELECT Id FROM User")["totalSize"] == 1
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", server.ca_bundle_path)
    env_only = requests.Session()
    assert connect(server, env_only).query("SELECT Id FROM User")["totalSize"] == 1


def test_ip_with_port_instance_url_and_ip_san_certificate(
    server: SalesforceTestServer, sf: Salesforce
) -> None:
    assert sf.sf_instance == f"127.0.0.1:{server.port}"
    assert sf.base_url == f"{server.instance_url}/services/data/v59.0/"
    result = sf.query("SELECT Id, Name FROM User")
    assert result["totalSize"] == 1
    assert server.api_versions_used == {"59.0"}


def test_every_data_response_carries_limit_info(server: SalesforceTestServer) -> None:
    server.set_api_usage(41, 15000)
    sf = connect(server)
    sf.query("SELECT Id FROM Contact")
    assert sf.api_usage["api-usage"].used == 42
    assert sf.api_usage["api-usage"].total == 15000
    limits = sf.limits()
    assert limits["DailyApiRequests"] == {"Max": 15000, "Remaining": 15000 - 43}


def test_request_log_counts_api_calls(server: SalesforceTestServer, sf: Salesforce) -> None:
    server.clear_request_log()
    sf.query(f"SELECT Id FROM Task WHERE CallObject = '{CALL_ID}'")
    sf.Task.create({"Subject": "Anruf", "CallObject": CALL_ID})
    calls = server.requests(kind="api")
    assert [(c.method, c.status) for c in calls] == [("GET", 200), ("POST", 201)]
    assert calls[0].query["q"][0].endswith(f"'{CALL_ID}'")
    assert calls[1].json == {"Subject": "Anruf", "CallObject": CALL_ID}
    assert server.requests("POST", r"/sobjects/Task", kind="api") == [calls[1]]


# --------------------------------------------------------------------------- SOSL


def test_sosl_escaped_international_term_finds_national_format(
    server: SalesforceTestServer, sf: Salesforce
) -> None:
    contact_id = server.add_contact(FirstName="Erika", LastName="Mustermann", Phone="0211 63553400")
    server.add_contact(LastName="Andere", Phone="0211 11111111")
    result = sf.search(
        r"FIND {\+49 \(211\) 63553400} IN PHONE FIELDS "
        r"RETURNING Contact(Id, Name, Phone), Lead(Id, Name WHERE IsConverted = false)"
    )
    assert result["searchRecords"] == [
        {
            "attributes": {
                "type": "Contact",
                "url": f"/services/data/v59.0/sobjects/Contact/{contact_id}",
            },
            "Id": contact_id,
            "Name": "Erika Mustermann",
            "Phone": "0211 63553400",
        }
    ]


@pytest.mark.parametrize(
    ("term", "bad_char"),
    [("+49 (211) 63553400", "+"), ("0211-63553400", "-"), ("a:b", ":"), ("John|Jane", "|")],
)
def test_sosl_unescaped_reserved_character_is_malformed_search(
    sf: Salesforce, term: str, bad_char: str
) -> None:
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.search(f"FIND {{{term}}} IN PHONE FIELDS RETURNING Contact(Id)")
    error = error_of(exc)
    assert error["errorCode"] == "MALFORMED_SEARCH"
    assert f"mismatched character '{bad_char}' expecting '}}'" in error["message"]


def test_sosl_or_between_quoted_terms(server: SalesforceTestServer, sf: Salesforce) -> None:
    first = server.add_contact(LastName="Eins", MobilePhone="+49 170 1234567")
    second = server.add_lead(LastName="Zwei", Phone="0211 63553400")
    server.add_contact(LastName="Drei", Phone="030 9999999")
    result = sf.search(
        'FIND {"+49 170 1234567" OR "0211 63553400"} IN PHONE FIELDS '
        "RETURNING Contact(Id), Lead(Id WHERE IsConverted = false)"
    )
    assert [r["Id"] for r in result["searchRecords"]] == [first, second]


def test_sosl_lead_is_converted_filter(server: SalesforceTestServer, sf: Salesforce) -> None:
    open_lead = server.add_lead(LastName="Offen", Phone="0211 63553400")
    server.add_lead(LastName="Konvertiert", Phone="0211 63553400", IsConverted=True)
    result = sf.search(
        "FIND {0211 63553400} IN PHONE FIELDS "
        "RETURNING Lead(Id, IsConverted WHERE IsConverted = false)"
    )
    assert [(r["Id"], r["IsConverted"]) for r in result["searchRecords"]] == [(open_lead, False)]
    soql = sf.query(
        "SELECT Id FROM Lead WHERE Phone = '0211 63553400' AND IsConverted = false LIMIT 5"
    )
    assert [r["Id"] for r in soql["records"]] == [open_lead]


def test_sosl_search_index_lags_behind_api_writes(server: SalesforceTestServer) -> None:
    server.search_lag_seconds = 0.4
    sf = connect(server)
    created = sf.Contact.create({"LastName": "Neu", "Phone": "0211 63553400"})
    sosl = r"FIND {\+49 211 63553400} IN PHONE FIELDS RETURNING Contact(Id)"
    assert sf.search(sosl)["searchRecords"] == []
    # SOQL sees the record immediately.
    soql = sf.query("SELECT Id FROM Contact WHERE Phone = '0211 63553400'")
    assert soql["records"][0]["Id"] == created["id"]
    time.sleep(0.45)
    assert [r["Id"] for r in sf.search(sosl)["searchRecords"]] == [created["id"]]


def test_sosl_exact_phone_mode_and_short_terms(sf: Salesforce) -> None:
    with SalesforceTestServer(phone_match="exact") as exact:
        exact_sf = connect(exact)
        exact.add_contact(Phone="0211 63553400")
        sosl = "FIND {{{}}} IN PHONE FIELDS RETURNING Contact(Id)"
        assert exact_sf.search(sosl.format(r"\+49 211 63553400"))["searchRecords"] == []
        assert len(exact_sf.search(sosl.format("0211/63553400"))["searchRecords"]) == 1
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.search("FIND {a} RETURNING Contact(Id)")
    assert error_of(exc)["errorCode"] == "MALFORMED_SEARCH"


def test_sosl_text_search_in_name_fields(server: SalesforceTestServer, sf: Salesforce) -> None:
    account = server.add_account(Name="Beispiel Werkzeugbau GmbH")
    server.add_account(Name="Andere AG")
    result = sf.search("FIND {Werkzeug*} IN NAME FIELDS RETURNING Account(Id, Name)")
    assert [r["Id"] for r in result["searchRecords"]] == [account]


# --------------------------------------------------------------------------- SOQL


def test_query_task_by_call_object(server: SalesforceTestServer, sf: Salesforce) -> None:
    contact_id = server.add_contact(Phone="0211 63553400")
    created = sf.Task.create(
        {
            "Subject": "Anruf von +49 211 63553400",
            "CallObject": CALL_ID,
            "WhoId": contact_id,
            "TaskSubtype": "Call",
            "CallType": "Inbound",
            "CallDurationInSeconds": 95,
            "Status": "Completed",
        }
    )
    assert created == {"id": created["id"], "success": True, "errors": []}
    result = sf.query(
        f"SELECT Id, Subject, Status, IsClosed, Who.Name FROM Task WHERE CallObject = '{CALL_ID}'"
    )
    assert result["totalSize"] == 1
    record = result["records"][0]
    assert record["Id"] == created["id"]
    assert record["IsClosed"] is True
    assert record["Who"]["Name"] == "Mustermann"
    assert record["Who"]["attributes"]["type"] == "Contact"


def test_task_status_and_priority_are_queryable(sf: Salesforce) -> None:
    statuses = sf.query("SELECT MasterLabel, ApiName, IsClosed, IsDefault FROM TaskStatus")
    rows = [(r["ApiName"], r["IsClosed"], r["IsDefault"]) for r in statuses["records"]]
    assert ("Not Started", False, True) in rows
    assert ("Completed", True, False) in rows
    closed = sf.query("SELECT ApiName FROM TaskStatus WHERE IsClosed = true")
    assert [r["ApiName"] for r in closed["records"]] == ["Completed"]
    default = sf.query("SELECT MasterLabel FROM TaskPriority WHERE IsDefault = true")
    assert default["records"][0]["MasterLabel"] == "Normal"


def test_german_org_task_picklists() -> None:
    with SalesforceTestServer(
        task_statuses=GERMAN_TASK_STATUSES, task_priorities=GERMAN_TASK_PRIORITIES
    ) as german:
        sf = connect(german)
        closed = sf.query("SELECT MasterLabel FROM TaskStatus WHERE IsClosed = true")
        assert [r["MasterLabel"] for r in closed["records"]] == ["Erledigt"]
        default_task = sf.Task.create({"Subject": "Anruf"})
        record = sf.Task.get(default_task["id"])
        assert (record["Status"], record["Priority"], record["IsClosed"]) == (
            "Offen",
            "Normal",
            False,
        )
        with pytest.raises(SalesforceMalformedRequest) as exc:
            sf.Task.create({"Subject": "Anruf", "Status": "Completed"})
        assert error_of(exc) == {
            "message": "Status: bad value for restricted picklist field: Completed",
            "errorCode": "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            "fields": ["Status"],
        }
        picklist = next(f for f in sf.Task.describe()["fields"] if f["name"] == "Status")
        assert [(v["value"], v["defaultValue"]) for v in picklist["picklistValues"]] == [
            ("Offen", True),
            ("In Bearbeitung", False),
            ("Erledigt", False),
        ]


def test_user_queries(server: SalesforceTestServer, sf: Salesforce) -> None:
    anna = server.add_user(FirstName="Anna", LastName="Beispiel", Email="Anna@Example.com")
    ben = server.add_user(FirstName="Ben", LastName="Muster", Email="ben@example.org")
    result = sf.query(f"SELECT Id, Name FROM User WHERE Id IN ('{anna}', '{ben[:15]}')")
    assert [r["Name"] for r in result["records"]] == ["Anna Beispiel", "Ben Muster"]
    by_mail = sf.query("SELECT Id FROM User WHERE Email = 'anna@example.com'")
    assert [r["Id"] for r in by_mail["records"]] == [anna]


def test_contact_query_by_field_is_case_insensitive(
    server: SalesforceTestServer, sf: Salesforce
) -> None:
    account = server.add_account(Name="Beispiel GmbH")
    contact = server.add_contact(Email="erika@example.com", AccountId=account)
    result = sf.query(
        "SELECT Id, Account.Name FROM Contact WHERE Email = 'ERIKA@example.com' LIMIT 1"
    )
    assert result["records"][0]["Id"] == contact
    assert result["records"][0]["Account"]["Name"] == "Beispiel GmbH"


def test_open_opportunities_newest_first(server: SalesforceTestServer, sf: Salesforce) -> None:
    account = server.add_account()
    server.add_opportunity(AccountId=account, LastModifiedDate="2024-01-01T10:00:00.000+0000")
    newest = server.add_opportunity(
        AccountId=account, LastModifiedDate="2024-03-01T10:00:00.000+0000"
    )
    server.add_opportunity(
        AccountId=account, StageName="Closed Won", LastModifiedDate="2024-04-01T10:00:00.000+0000"
    )
    server.add_opportunity(LastModifiedDate="2024-05-01T10:00:00.000+0000")
    result = sf.query(
        f"SELECT Id, Name FROM Opportunity WHERE AccountId = '{account}' AND IsClosed = false "
        "ORDER BY LastModifiedDate DESC LIMIT 1"
    )
    assert [r["Id"] for r in result["records"]] == [newest]


@pytest.mark.parametrize(
    ("soql", "error_code", "fragment"),
    [
        ("SELECT COUNT() FROM Task", "MALFORMED_QUERY", "does not support functions"),
        ("SELECT Id FROM Task GROUP BY Status", "MALFORMED_QUERY", "does not support GROUP BY"),
        ("SELECT Id FROM Task WHERE CreatedDate = TODAY", "MALFORMED_QUERY", "date literals"),
        ("SELECT Id, (SELECT Id FROM Tasks) FROM Contact", "MALFORMED_QUERY", "sub-queries"),
        (
            "SELECT Id FROM Lead WHERE IsConverted = false AND Phone = '1' OR Email = 'a'",
            "MALFORMED_QUERY",
            "unexpected token: 'OR'",
        ),
        ("SELECT Id FROM Lead WHERE IsConverted = 'false'", "INVALID_FIELD", "type boolean"),
        ("SELECT Id, Foo FROM Contact", "INVALID_FIELD", "No such column 'Foo'"),
        ("SELECT Id FROM Task WHERE Description = 'x'", "INVALID_FIELD", "can not be filtered"),
        ("SELECT Id FROM Task WHERE WhoId = 'nope'", "INVALID_QUERY_FILTER_OPERATOR", "invalid ID"),
        ("SELECT Id FROM Unknown__c", "INVALID_TYPE", "is not supported"),
    ],
)
def test_soql_errors(sf: Salesforce, soql: str, error_code: str, fragment: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.query(soql)
    error = error_of(exc)
    assert error["errorCode"] == error_code
    assert fragment in error["message"]


def test_query_all_follows_next_records_url(server: SalesforceTestServer) -> None:
    server.query_batch_size = 2
    sf = connect(server)
    ids = [server.add_contact(LastName=f"Kontakt {n}") for n in range(5)]
    first = sf.query("SELECT Id FROM Contact")
    assert first["done"] is False and first["totalSize"] == 5
    assert [r["Id"] for r in sf.query_all("SELECT Id FROM Contact")["records"]] == ids


# --------------------------------------------------------------------------- writes


def test_composite_partial_failure_string_too_long(
    server: SalesforceTestServer, sf: Salesforce
) -> None:
    body = {
        "allOrNone": False,
        "records": [
            {"attributes": {"type": "Task"}, "Subject": "Anruf", "CallObject": CALL_ID},
            {"attributes": {"type": "Task"}, "Subject": "x" * 256},
        ],
    }
    results = sf.restful("composite/sobjects", method="POST", json=body)
    assert server.request_log[-1].status == 200
    assert results[0] == {"id": results[0]["id"], "success": True, "errors": []}
    assert results[1]["success"] is False
    assert "id" not in results[1]
    [error] = results[1]["errors"]
    assert error["statusCode"] == "STRING_TOO_LONG"
    assert error["fields"] == ["Subject"]
    assert error["message"].startswith("Subject: data value too large: xxx")
    assert error["message"].endswith("(max length=255)")
    assert [t["CallObject"] for t in server.records("Task")] == [CALL_ID]


def test_composite_all_or_none_rolls_back(server: SalesforceTestServer, sf: Salesforce) -> None:
    body = {
        "allOrNone": True,
        "records": [
            {"attributes": {"type": "Task"}, "Subject": "Anruf"},
            {"attributes": {"type": "Task"}, "Description": "y" * 32001},
        ],
    }
    results = sf.restful("composite/sobjects", method="POST", json=body)
    assert results[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert results[1]["errors"][0]["statusCode"] == "STRING_TOO_LONG"
    assert results[1]["errors"][0]["message"].startswith("Comments: data value too large")
    assert server.records("Task") == []


def test_composite_limits_and_injected_lock_error(
    server: SalesforceTestServer, sf: Salesforce
) -> None:
    too_many = {"records": [{"attributes": {"type": "Task"}}] * 201}
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.restful("composite/sobjects", method="POST", json=too_many)
    assert error_of(exc)["errorCode"] == "EXCEEDED_ID_LIMIT"
    server.fail_next_record("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access")
    results = sf.restful(
        "composite/sobjects",
        method="POST",
        json={"records": [{"attributes": {"type": "Task"}, "Subject": s} for s in ("a", "b")]},
    )
    assert results[0]["errors"][0]["statusCode"] == "UNABLE_TO_LOCK_ROW"
    assert results[1]["success"] is True


def test_composite_update_reports_per_record_errors(
    server: SalesforceTestServer, sf: Salesforce
) -> None:
    task_id = sf.Task.create({"Subject": "Anruf"})["id"]
    deleted_id = sf.Task.create({"Subject": "weg"})["id"]
    sf.Task.delete(deleted_id)
    body = {
        "records": [
            {"attributes": {"type": "Task"}, "id": task_id, "Status": "Completed"},
            {"attributes": {"type": "Task"}, "id": deleted_id, "Status": "Completed"},
            {"attributes": {"type": "Task"}, "id": "00T000000000000AAA", "Status": "Completed"},
        ]
    }
    results = sf.restful("composite/sobjects", method="PATCH", json=body)
    assert [(r["id"], r["success"]) for r in results] == [
        (task_id, True),
        (deleted_id, False),
        ("00T000000000000AAA", False),
    ]
    assert results[1]["errors"][0]["statusCode"] == "ENTITY_IS_DELETED"
    assert results[2]["errors"][0]["statusCode"] == "INVALID_CROSS_REFERENCE_KEY"
    assert sf.Task.get(task_id)["IsClosed"] is True


def test_create_validation_errors(server: SalesforceTestServer, sf: Salesforce) -> None:
    cases: list[tuple[dict[str, Any], str, list[str]]] = [
        ({"Subject": "s" * 256}, "STRING_TOO_LONG", ["Subject"]),
        ({"CallObject": "c" * 256}, "STRING_TOO_LONG", ["CallObject"]),
        ({"Colour__c": "blau"}, "INVALID_FIELD", []),
        ({"Priority": "Urgent"}, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", ["Priority"]),
        ({"IsClosed": True}, "INVALID_FIELD_FOR_INSERT_UPDATE", ["IsClosed"]),
        ({"WhoId": server.add_account()}, "FIELD_INTEGRITY_EXCEPTION", ["WhoId"]),
        ({"WhoId": "003000000000000AAA"}, "INVALID_CROSS_REFERENCE_KEY", ["WhoId"]),
    ]
    for data, code, fields in cases:
        with pytest.raises(SalesforceMalformedRequest) as exc:
            sf.Task.create(data)
        assert (error_of(exc)["errorCode"], error_of(exc)["fields"]) == (code, fields), data
    assert error_of(exc)["message"] == "invalid cross reference id"
    lead = server.add_lead()
    assert sf.Task.create({"WhoId": lead})["success"] is True
    assert sf.Task.create({"Description": "d" * 32000})["success"] is True


def test_validation_rule_hook(server: SalesforceTestServer, sf: Salesforce) -> None:
    server.add_validation_rule(
        "Task", lambda task: not task.get("WhoId"), "Bitte einen Kontakt angeben", "WhoId"
    )
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Task.create({"Subject": "Anruf"})
    assert error_of(exc) == {
        "message": "Bitte einen Kontakt angeben",
        "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
        "fields": ["WhoId"],
    }


def test_get_update_delete_and_not_found(server: SalesforceTestServer, sf: Salesforce) -> None:
    contact_id = server.add_contact(LastModifiedDate="2024-01-01T00:00:00.000+0000")
    assert sf.Contact.get(contact_id)["Name"] == "Mustermann"
    assert sf.Contact.update(contact_id, {"FirstName": "Erika"}) == 204
    updated = sf.Contact.get(contact_id)
    assert updated["Name"] == "Erika Mustermann"
    assert updated["LastModifiedDate"] > "2024-01-01T00:00:00.000+0000"
    assert sf.Contact.delete(contact_id) == 204
    with pytest.raises(SalesforceResourceNotFound):
        sf.Contact.get(contact_id)


def test_describe_custom_external_id_and_upsert(
    server: SalesforceTestServer, sf: Salesforce
) -> None:
    server.add_field("Task", "Sipgate_Call_Id__c", "string", 64, external_id=True, unique=True)
    describe = sf.Task.describe()
    fields = {f["name"]: f for f in describe["fields"]}
    assert describe["keyPrefix"] == "00T"
    assert fields["Sipgate_Call_Id__c"]["externalId"] is True
    assert fields["CallObject"]["length"] == 255 and fields["CallObject"]["filterable"] is True
    assert fields["Subject"]["length"] == 255
    assert fields["Description"]["length"] == 32000
    assert fields["Description"]["filterable"] is False
    assert sf.Task.upsert("Sipgate_Call_Id__c/call-42", {"Subject": "Anruf"}) == 201
    assert sf.Task.upsert("Sipgate_Call_Id__c/call-42", {"Subject": "Anruf (2)"}) == 200
    [task] = server.records("Task")
    assert (task["Sipgate_Call_Id__c"], task["Subject"]) == ("call-42", "Anruf (2)")
    assert sf.Task.get_by_custom_id("Sipgate_Call_Id__c", "call-42")["Id"] == task["Id"]
    with pytest.raises(SalesforceMalformedRequest) as exc:
        sf.Task.create({"Sipgate_Call_Id__c": "call-42"})
    assert error_of(exc)["errorCode"] == "DUPLICATE_VALUE"


# --------------------------------------------------------------------------- sessions & limits


def test_expired_session_raises_salesforce_expired_session(
    server: SalesforceTestServer, sf: Salesforce
) -> None:
    server.expire_sessions()
    with pytest.raises(SalesforceExpiredSession) as exc:
        sf.query("SELECT Id FROM Contact")
    assert exc.value.status == 401
    assert exc.value.content == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]


def test_request_limit_exceeded_is_refused_request(
    server: SalesforceTestServer, sf: Salesforce
) -> None:
    server.exhaust_api_limit()
    with pytest.raises(SalesforceRefusedRequest) as exc:
        sf.Task.create({"Subject": "Anruf"})
    assert exc.value.status == 403
    assert exc.value.content == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    assert server.records("Task") == []


def test_injected_503_is_general_error(server: SalesforceTestServer, sf: Salesforce) -> None:
    server.fail_next(r"/query", 503, "<html>Service Unavailable</html>")
    with pytest.raises(SalesforceGeneralError) as exc:
        sf.query("SELECT Id FROM Contact")
    assert exc.value.status == 503
    assert sf.query("SELECT Id FROM Contact")["totalSize"] == 0


def test_client_credentials_login_with_requests(server: SalesforceTestServer) -> None:
    url = f"{server.instance_url}/services/oauth2/token"
    response = requests.post(
        url,
        data={"grant_type": "client_credentials"},
        auth=(server.consumer_key, server.consumer_secret),
        verify=server.ca_bundle_path,
        timeout=5,
    )
    assert response.status_code == 200
    token = response.json()
    assert set(token) == {
        "access_token",
        "signature",
        "scope",
        "instance_url",
        "id",
        "token_type",
        "issued_at",
    }
    assert token["token_type"] == "Bearer"
    assert token["instance_url"] == server.instance_url
    sf = Salesforce(
        instance_url=token["instance_url"],
        session_id=token["access_token"],
        session=server.client_session(),
    )
    assert sf.query("SELECT Id FROM User")["totalSize"] == 1

    wrong = requests.post(
        url,
        data={
            "grant_type": "client_credentials",
            "client_id": server.consumer_key,
            "client_secret": "falsch",
        },
        verify=server.ca_bundle_path,
        timeout=5,
    )
    assert (wrong.status_code, wrong.json()["error"]) == (400, "invalid_client")
    server.refuse_logins()
    refused = requests.post(
        url,
        data={"grant_type": "client_credentials"},
        auth=(server.consumer_key, server.consumer_secret),
        verify=server.ca_bundle_path,
        timeout=5,
    )
    assert refused.json() == {
        "error": "invalid_grant",
        "error_description": "authentication failure",
    }
    assert server.requests(kind="auth")[1].form == {
        "grant_type": "client_credentials",
        "client_id": server.consumer_key,
        "client_secret": "***",
    }


def test_simple_salesforce_client_credentials_needs_my_domain() -> None:
    # Fails before any network I/O: simple-salesforce refuses domain "login"/"test".
    with pytest.raises(SalesforceAuthenticationFailed) as exc:
        Salesforce(consumer_key="key", consumer_secret="secret")
    assert exc.value.code == "INVALID AUTH"


def test_simple_salesforce_logs_in_again_after_session_expiry(
    server: SalesforceTestServer,
) -> None:
    session = server.client_session(redirect_hosts=["acme.my.salesforce.com"])
    sf = Salesforce(
        consumer_key=server.consumer_key,
        consumer_secret=server.consumer_secret,
        domain="acme.my",
        session=session,
    )
    assert sf.query("SELECT Id FROM User")["totalSize"] == 1
    server.expire_sessions()
    assert sf.query("SELECT Id FROM User")["totalSize"] == 1
    assert len(server.requests(kind="auth")) == 2
    server.refuse_logins()
    server.expire_sessions()
    with pytest.raises(SalesforceAuthenticationFailed):
        sf.query("SELECT Id FROM User")


def test_relogin_retries_bounded_for_query_but_not_for_sobject_calls(
    server: SalesforceTestServer,
) -> None:
    session = server.client_session(redirect_hosts=["acme.my.salesforce.com"])
    sf = Salesforce(
        consumer_key=server.consumer_key,
        consumer_secret=server.consumer_secret,
        domain="acme.my",
        session=session,
    )
    expired = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
    server.clear_request_log()
    server.fail_next(r"/query", 401, expired, count=10)
    with pytest.raises(SalesforceExpiredSession):
        sf.query("SELECT Id FROM User")
    # Salesforce._call_salesforce: 1 call + 3 retries, and a login before every retry check.
    assert len(server.requests(path_regex=r"/query")) == 4
    assert len(server.requests(kind="auth")) == 4

    server.clear_faults()
    server.clear_request_log()
    server.fail_next(r"/sobjects/Task", 401, expired, count=10)
    # SFType._call_salesforce doesn't pass ``retries`` on: it keeps logging in until the
    # server stops answering 401 (here after 10 failures; unbounded against a real org).
    assert sf.Task.create({"Subject": "Anruf"})["success"] is True
    assert len(server.requests(path_regex=r"/sobjects/Task")) == 11
    assert len(server.requests(kind="auth")) == 10


def test_jwt_bearer_login_via_simple_salesforce() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with SalesforceTestServer(jwt_public_key=public_pem) as jwt_server:
        session = jwt_server.client_session(redirect_hosts=["login.salesforce.com"])
        sf = Salesforce(
            username=jwt_server.integration_username,
            consumer_key=jwt_server.consumer_key,
            privatekey=private_pem,
            session=session,
        )
        assert sf.query("SELECT Username FROM User")["records"][0]["Username"] == (
            jwt_server.integration_username
        )
        # simple-salesforce also warns about self-authorisation for this error text.
        with (
            pytest.raises(SalesforceAuthenticationFailed) as exc,
            pytest.warns(UserWarning, match="self-authorize"),
        ):
            Salesforce(
                username="unknown@example.com",
                consumer_key=jwt_server.consumer_key,
                privatekey=private_pem,
                session=session,
            )
        assert exc.value.code == "invalid_grant"
        other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        forged = other_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        with pytest.raises(SalesforceAuthenticationFailed):
            Salesforce(
                username=jwt_server.integration_username,
                consumer_key=jwt_server.consumer_key,
                privatekey=forged,
                session=session,
            )


# --------------------------------------------------------------------------- timeouts


def test_delay_after_commit_times_out_client_but_task_exists(
    server: SalesforceTestServer,
) -> None:
    contact_id = server.add_contact(Phone="0211 63553400")
    server.delay_after_commit(r"/sobjects/Task/?$", 2.0)
    sf = connect(server, server.client_session(timeout=0.5))
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        sf.Task.create({"Subject": "Anruf", "CallObject": CALL_ID, "WhoId": contact_id})
    assert time.monotonic() - started < 1.5
    [task] = server.records("Task")
    assert task["CallObject"] == CALL_ID
    # A retry can detect the write that "failed" by timeout.
    found = sf.query(f"SELECT Id FROM Task WHERE CallObject = '{CALL_ID}'")
    assert [r["Id"] for r in found["records"]] == [task["Id"]]


def test_timeout_options_for_simple_salesforce(server: SalesforceTestServer) -> None:
    server.delay_after_commit(r"/composite/sobjects", 2.0, count=None)
    server.delay_after_commit(r"/sobjects/Task/?$", 2.0, count=None)
    sf = connect(server)
    body = {"records": [{"attributes": {"type": "Task"}, "Subject": "Anruf"}]}
    # 1) restful()/query()/limits() forward **kwargs to requests: timeout= works per call.
    with pytest.raises(requests.exceptions.ReadTimeout):
        sf.restful("composite/sobjects", method="POST", json=body, timeout=0.3)
    # 2) SFType.create() has no **kwargs, so a per-call timeout is impossible ...
    with pytest.raises(TypeError):
        sf.Task.create({"Subject": "Anruf"}, timeout=0.3)  # type: ignore[call-arg]

    # ... but an adapter mounted on the session bounds every call,
    session = server.client_session()
    session.mount("https://", TimeoutHTTPAdapter(0.3))
    with pytest.raises(requests.exceptions.ReadTimeout):
        connect(server, session).Task.create({"Subject": "Anruf"})

    # 3) ... and so does a Session subclass that sets a default timeout.
    class TimeoutSession(requests.Session):
        def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("timeout", 0.3)
            return super().request(method, url, *args, **kwargs)

    subclassed = TimeoutSession()
    subclassed.trust_env = False
    subclassed.verify = server.ca_bundle_path
    with pytest.raises(requests.exceptions.ReadTimeout):
        connect(server, subclassed).Task.create({"Subject": "Anruf"})
    assert len(server.records("Task")) == 3
