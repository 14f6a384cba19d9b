"""Drive ``HubSpotTestServer`` through the real ``hubspot-api-client`` SDK over loopback HTTP.

These tests pin both the server's HubSpot behaviour and the SDK/urllib3 behaviour the HubSpot
adapter has to live with (exception types, retries on timeouts, ``e.body`` / ``e.headers``).
All people, companies and phone numbers are fictional (030 23125xxx is a range reserved for
fiction in Germany).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import urllib3
from hubspot import HubSpot
from hubspot.crm import association_type
from hubspot.crm.contacts import ApiException as ContactsApiException
from hubspot.crm.contacts import SimplePublicObjectInputForCreate as ContactInput
from hubspot.crm.objects import ApiException as ObjectsApiException
from hubspot.crm.objects import (
    BatchInputSimplePublicObjectBatchInputForCreate,
    BatchInputSimplePublicObjectBatchInputUpsert,
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInputForCreate,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.objects.calls import ApiException as CallsApiException
from hubspot.crm.objects.tasks import ApiException as TasksApiException
from hubspot.crm.owners import ApiException as OwnersApiException
from hubspot.crm.properties import PropertyCreate
from urllib3.util.retry import Retry

from .base import ManualClock
from .hubspot_server import (
    ALL_SCOPES,
    ASSOCIATION_TYPES,
    DEFAULT_TOKEN,
    Association,
    HubSpotTestServer,
    calculated_phone_properties,
)

TIMEOUT = 5.0
ERIKA_PHONE = "+49 30 23125012"
ERIKA_NSN = "3023125012"


@pytest.fixture
def server() -> Iterator[HubSpotTestServer]:
    """A running server with default limits."""
    with HubSpotTestServer() as running:
        yield running


@pytest.fixture
def search_server() -> Iterator[HubSpotTestServer]:
    """A running server whose search budget does not get in the way of search-heavy tests."""
    with HubSpotTestServer(search_per_second_limit=1_000) as running:
        yield running


@pytest.fixture
def client(server: HubSpotTestServer) -> HubSpot:
    """An SDK client pointed at the test server."""
    return HubSpot(access_token=DEFAULT_TOKEN, host=server.url)


def association(to_id: str, type_id: int) -> dict[str, Any]:
    """Build one inline association as HubSpot documents it."""
    return {
        "to": {"id": to_id},
        "types": [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": type_id}],
    }


def phone_search(
    nsn: str, property_name: str = "hs_searchable_calculated_phone_number"
) -> PublicObjectSearchRequest:
    """Search request for contacts whose calculated phone number equals ``nsn``."""
    return PublicObjectSearchRequest(
        filter_groups=[
            FilterGroup(filters=[Filter(property_name=property_name, operator="EQ", value=nsn)])
        ],
        properties=["firstname", "lastname", "phone"],
        limit=10,
    )


def error_body(error: Exception) -> dict[str, Any]:
    """Decode the JSON body of an SDK ``ApiException`` (the SDK has already made it ``str``)."""
    body = getattr(error, "body", None)
    assert isinstance(body, str), f"expected a decoded str body, got {type(body)}"
    decoded: dict[str, Any] = json.loads(body)
    return decoded


# ------------------------------------------------------------------------------------------
# Phone numbers and search
# ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "nsn", "e164"),
    [
        ("+49 30 23125012", "3023125012", "+493023125012"),
        ("030 23125012", "3023125012", "+493023125012"),
        ("0049 (30) 231-250-12", "3023125012", "+493023125012"),
        ("+1 555 0100 123", "5550100123", "+15550100123"),
    ],
)
def test_calculated_phone_number_is_national_significant_number(
    raw: str, nsn: str, e164: str
) -> None:
    assert calculated_phone_properties(raw) == {
        "hs_searchable_calculated_phone_number": nsn,
        "hs_calculated_phone_number": e164,
    }


def test_default_region_applies_to_numbers_without_country_code() -> None:
    assert (
        calculated_phone_properties("0201 5550123", default_region="NL")[
            "hs_calculated_phone_number"
        ]
        == "+312015550123"
    )
    assert calculated_phone_properties("not a number") == {}


def test_created_contact_is_found_by_searchable_phone_number(
    server: HubSpotTestServer, client: HubSpot
) -> None:
    created = client.crm.contacts.basic_api.create(
        ContactInput(
            properties={
                "firstname": "Erika",
                "lastname": "Mustermann",
                "phone": ERIKA_PHONE,
                "mobilephone": "+49 1520 0000001",
            }
        ),
        _request_timeout=TIMEOUT,
    )
    assert created.properties["hs_searchable_calculated_phone_number"] == ERIKA_NSN
    assert created.properties["hs_calculated_phone_number"] == "+493023125012"
    assert created.properties["hs_searchable_calculated_mobile_number"] == "15200000001"

    found = client.crm.contacts.search_api.do_search(
        phone_search(ERIKA_NSN), _request_timeout=TIMEOUT
    )
    assert found.total == 1
    assert [r.id for r in found.results] == [created.id]
    # Search results carry the requested properties plus HubSpot's always-returned ones.
    assert set(found.results[0].properties) == {
        "firstname",
        "lastname",
        "phone",
        "createdate",
        "lastmodifieddate",
        "hs_object_id",
    }
    by_mobile = client.crm.contacts.search_api.do_search(
        phone_search("15200000001", "hs_searchable_calculated_mobile_number"),
        _request_timeout=TIMEOUT,
    )
    assert by_mobile.total == 1
    # The full E.164 number is not what the searchable property holds.
    assert (
        client.crm.contacts.search_api.do_search(
            phone_search("+493023125012"), _request_timeout=TIMEOUT
        ).total
        == 0
    )


def test_search_index_lags_behind_creates_and_updates() -> None:
    clock = ManualClock()
    with HubSpotTestServer(search_lag_seconds=3.0, clock=clock) as server:
        client = HubSpot(access_token=DEFAULT_TOKEN, host=server.url)
        created = client.crm.contacts.basic_api.create(
            ContactInput(properties={"firstname": "Max", "phone": ERIKA_PHONE}),
            _request_timeout=TIMEOUT,
        )
        search = client.crm.contacts.search_api
        assert search.do_search(phone_search(ERIKA_NSN), _request_timeout=TIMEOUT).total == 0
        # Reading by id is not subject to the lag.
        assert (
            client.crm.contacts.basic_api.get_by_id(created.id, _request_timeout=TIMEOUT).id
            == created.id
        )

        clock.advance(3.0)
        assert search.do_search(phone_search(ERIKA_NSN), _request_timeout=TIMEOUT).total == 1

        client.crm.contacts.basic_api.update(
            created.id,
            SimplePublicObjectInput(properties={"phone": "+49 30 23125099"}),
            _request_timeout=TIMEOUT,
        )
        clock.advance(1.0)
        # Until re-indexed, search still sees the old number.
        assert search.do_search(phone_search(ERIKA_NSN), _request_timeout=TIMEOUT).total == 1
        assert search.do_search(phone_search("3023125099"), _request_timeout=TIMEOUT).total == 0
        clock.advance(2.0)
        assert search.do_search(phone_search(ERIKA_NSN), _request_timeout=TIMEOUT).total == 0
        assert search.do_search(phone_search("3023125099"), _request_timeout=TIMEOUT).total == 1


def test_seeded_objects_are_searchable_immediately_unless_asked_otherwise() -> None:
    clock = ManualClock()
    with HubSpotTestServer(search_lag_seconds=5.0, clock=clock) as server:
        client = HubSpot(access_token=DEFAULT_TOKEN, host=server.url)
        server.add_contact({"phone": ERIKA_PHONE})
        server.add_contact({"phone": ERIKA_PHONE}, searchable=False)
        search = client.crm.contacts.search_api
        assert search.do_search(phone_search(ERIKA_NSN), _request_timeout=TIMEOUT).total == 1
        clock.advance(5.0)
        assert search.do_search(phone_search(ERIKA_NSN), _request_timeout=TIMEOUT).total == 2


def test_search_operators_sorting_and_paging(search_server: HubSpotTestServer) -> None:
    server = search_server
    erika = server.add_contact(
        {"firstname": "Erika", "lastname": "Mustermann", "email": "erika@example.com"}
    )
    max_ = server.add_contact(
        {"firstname": "Max", "lastname": "Mustermann", "email": "max@example.org"}
    )
    server.add_contact({"firstname": "Anna", "lastname": "Beispiel"})

    def ids(*filters: dict[str, Any], **body: Any) -> list[str]:
        response = requests.post(
            f"{server.url}/crm/v3/objects/contacts/search",
            json={"filterGroups": [{"filters": list(filters)}], **body},
            headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"},
            timeout=TIMEOUT,
        )
        assert response.status_code == 200, response.text
        return [r["id"] for r in response.json()["results"]]

    assert ids({"propertyName": "lastname", "operator": "EQ", "value": "mustermann"}) == [
        erika,
        max_,
    ]
    assert ids({"propertyName": "lastname", "operator": "NEQ", "value": "Mustermann"}) == [
        ids({"propertyName": "firstname", "operator": "EQ", "value": "Anna"})[0]
    ]
    # IN on string properties matches lowercase values only, as HubSpot documents.
    assert ids({"propertyName": "firstname", "operator": "IN", "values": ["erika", "max"]}) == [
        erika,
        max_,
    ]
    assert ids({"propertyName": "firstname", "operator": "IN", "values": ["Erika"]}) == []
    assert ids({"propertyName": "email", "operator": "HAS_PROPERTY"}) == [erika, max_]
    assert ids(
        {"propertyName": "email", "operator": "CONTAINS_TOKEN", "value": "*@example.com"}
    ) == [erika]
    assert ids(
        {"propertyName": "lastname", "operator": "EQ", "value": "Mustermann"},
        sorts=[{"propertyName": "firstname", "direction": "DESCENDING"}],
    ) == [max_, erika]
    first_page = requests.post(
        f"{server.url}/crm/v3/objects/contacts/search",
        json={"limit": 2},
        headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"},
        timeout=TIMEOUT,
    ).json()
    assert first_page["total"] == 3
    assert first_page["paging"] == {"next": {"after": "2"}}
    anna = ids({"propertyName": "firstname", "operator": "EQ", "value": "anna"})
    assert (
        ids({"propertyName": "hs_object_id", "operator": "HAS_PROPERTY"}, after="2", limit=2)
        == anna
    )


def test_search_rejects_too_many_filters(search_server: HubSpotTestServer) -> None:
    client = HubSpot(access_token=DEFAULT_TOKEN, host=search_server.url)

    def search_with(groups: list[int]) -> None:
        request = PublicObjectSearchRequest(
            filter_groups=[
                FilterGroup(
                    filters=[
                        Filter(property_name="firstname", operator="EQ", value=f"name{i}")
                        for i in range(size)
                    ]
                )
                for size in groups
            ]
        )
        client.crm.contacts.search_api.do_search(request, _request_timeout=TIMEOUT)

    search_with([6, 6, 6])  # 18 filters in total is the documented maximum
    search_with([1, 1, 1, 1, 1])  # 5 groups is the maximum
    for too_many in ([1] * 6, [7], [6, 6, 6, 1]):
        with pytest.raises(ContactsApiException) as caught:
            search_with(too_many)
        assert caught.value.status == 400
        assert error_body(caught.value)["category"] == "VALIDATION_ERROR"


def test_search_limits_page_size_and_depth(server: HubSpotTestServer) -> None:
    headers = {"Authorization": f"Bearer {DEFAULT_TOKEN}"}
    url = f"{server.url}/crm/v3/objects/contacts/search"
    assert requests.post(url, json={"limit": 200}, headers=headers, timeout=TIMEOUT).ok
    assert (
        requests.post(url, json={"limit": 201}, headers=headers, timeout=TIMEOUT).status_code == 400
    )
    assert (
        requests.post(
            url, json={"after": "9990", "limit": 20}, headers=headers, timeout=TIMEOUT
        ).status_code
        == 400
    )
    long_query = {"query": "x" * 3000}
    assert requests.post(url, json=long_query, headers=headers, timeout=TIMEOUT).status_code == 400


# ------------------------------------------------------------------------------------------
# Calls, associations, tasks, batch
# ------------------------------------------------------------------------------------------


def test_association_type_table_matches_the_sdk_enum() -> None:
    sdk = {
        name.lower(): value
        for name, value in vars(association_type.AssociationType).items()
        if name.isupper()
    }
    ours = {definition.type_id for defs in ASSOCIATION_TYPES.values() for definition in defs}
    expected = {
        "call_to_contact": 194,
        "call_to_company": 182,
        "call_to_deal": 206,
        "task_to_contact": 204,
        "note_to_contact": 202,
        "ticket_to_contact": 16,
    }
    for name, type_id in expected.items():
        assert sdk[name] == type_id
        assert type_id in ours
    for defs in ASSOCIATION_TYPES.values():
        for definition in defs:
            assert definition.type_id in sdk.values(), definition


def test_call_with_inline_association_194_can_be_read_back(
    server: HubSpotTestServer, client: HubSpot
) -> None:
    contact_id = server.add_contact({"firstname": "Erika", "lastname": "Mustermann"})
    company_id = server.add_company({"name": "Beispiel GmbH"})
    deal_id = server.add_deal({"dealname": "Testauftrag"}, contact_ids=[contact_id])

    call = client.crm.objects.calls.basic_api.create(
        SimplePublicObjectInputForCreate(
            properties={
                "hs_timestamp": "2026-01-15T09:30:00.000Z",
                "hs_call_direction": "INBOUND",
                "hs_call_status": "COMPLETED",
                "hs_call_duration": "42000",
                "hs_call_from_number": ERIKA_PHONE,
                "hs_call_body": "Rückruf vereinbart",
            },
            associations=[
                association(contact_id, 194),
                association(company_id, 182),
                association(deal_id, 206),
            ],
        ),
        _request_timeout=TIMEOUT,
    )
    assert call.properties["hs_timestamp"] == "2026-01-15T09:30:00Z"  # Instant.toString()

    read = client.crm.objects.calls.basic_api.get_by_id(
        call.id, associations=["contacts", "companies", "deals"], _request_timeout=TIMEOUT
    )
    assert read.associations["contacts"].results[0].id == contact_id
    assert read.associations["contacts"].results[0].type == "call_to_contact"
    assert {name: [r.id for r in value.results] for name, value in read.associations.items()} == {
        "contacts": [contact_id],
        "companies": [company_id],
        "deals": [deal_id],
    }

    page = client.crm.associations.v4.basic_api.get_page(
        "calls", call.id, "contacts", _request_timeout=TIMEOUT
    )
    assert page.results[0].to_object_id == contact_id
    assert page.results[0].association_types[0].type_id == 194

    # Stored in both directions, like HubSpot: the contact sees the call with type 193.
    assert Association("calls", call.id, "contacts", contact_id, 194) in server.associations(
        "calls", call.id
    )
    assert Association("contacts", contact_id, "calls", call.id, 193) in server.associations(
        "contacts", contact_id
    )


def test_v4_association_endpoints_and_batch_read(
    server: HubSpotTestServer, client: HubSpot
) -> None:
    contact_id = server.add_contact({"firstname": "Erika"})
    company_id = server.add_company({"name": "Beispiel GmbH"})
    note_id = server.add_object(
        "notes", {"hs_timestamp": "2026-01-15T09:30:00Z", "hs_note_body": "Notiz"}
    )
    v4 = client.crm.associations.v4.basic_api
    made = v4.create_default("notes", note_id, "contacts", contact_id, _request_timeout=TIMEOUT)
    assert made.status == "COMPLETE"
    assert [r.association_spec.association_type_id for r in made.results] == [202, 201]
    labeled = v4.create(
        "contacts",
        contact_id,
        "companies",
        company_id,
        [{"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}],
        _request_timeout=TIMEOUT,
    )
    assert labeled.labels == ["Primary"]
    # A primary association comes with the unlabeled one, in both directions.
    assert {
        a.type_id for a in server.associations("contacts", contact_id) if a.to_type == "companies"
    } == {1, 279}
    assert {a.type_id for a in server.associations("companies", company_id)} == {2, 280}
    labels = requests.get(
        f"{server.url}/crm/v4/associations/calls/contacts/labels",
        headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"},
        timeout=TIMEOUT,
    ).json()
    assert labels == {"results": [{"category": "HUBSPOT_DEFINED", "typeId": 194, "label": None}]}

    read = requests.post(
        f"{server.url}/crm/v3/objects/contacts/batch/read",
        json={"inputs": [{"id": contact_id}, {"id": "424242"}], "properties": ["firstname"]},
        headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"},
        timeout=TIMEOUT,
    )
    assert read.status_code == 207
    assert [r["properties"]["firstname"] for r in read.json()["results"]] == ["Erika"]
    assert read.json()["errors"][0]["context"] == {"ids": ["424242"]}


def test_wrong_association_type_id_is_rejected_and_nothing_is_created(
    server: HubSpotTestServer, client: HubSpot
) -> None:
    contact_id = server.add_contact({"firstname": "Erika"})
    for bad in (193, 204, 999):  # contact→call, task→contact, unknown
        with pytest.raises(CallsApiException) as caught:
            client.crm.objects.calls.basic_api.create(
                SimplePublicObjectInputForCreate(
                    properties={"hs_timestamp": "2026-01-15T09:30:00Z"},
                    associations=[association(contact_id, bad)],
                ),
                _request_timeout=TIMEOUT,
            )
        assert caught.value.status == 400
        body = error_body(caught.value)
        assert body["category"] == "VALIDATION_ERROR"
        assert body["status"] == "error" and body["correlationId"]
    with pytest.raises(CallsApiException) as missing_target:
        client.crm.objects.calls.basic_api.create(
            SimplePublicObjectInputForCreate(
                properties={"hs_timestamp": "2026-01-15T09:30:00Z"},
                associations=[association("424242", 194)],
            ),
            _request_timeout=TIMEOUT,
        )
    assert error_body(missing_target.value)["context"]["INVALID_OBJECT_IDS"] == [
        "CONTACT=424242 is not valid"
    ]
    assert server.objects("calls") == []


def test_unknown_properties_and_bad_values_are_rejected(client: HubSpot) -> None:
    with pytest.raises(CallsApiException) as caught:
        client.crm.objects.calls.basic_api.create(
            SimplePublicObjectInputForCreate(
                properties={
                    "hs_timestamp": "yesterday",
                    "sipgate_call_id": "c-1",
                    "hs_call_direction": "SIDEWAYS",
                }
            ),
            _request_timeout=TIMEOUT,
        )
    body = error_body(caught.value)
    assert body["category"] == "VALIDATION_ERROR"
    assert body["message"].startswith("Property values were not valid: ")
    problems = json.loads(body["message"].removeprefix("Property values were not valid: "))
    assert {p["name"]: p["error"] for p in problems} == {
        "hs_timestamp": "INVALID_DATE",
        "sipgate_call_id": "PROPERTY_DOESNT_EXIST",
        "hs_call_direction": "INVALID_OPTION",
    }


def test_owner_ids_are_validated(server: HubSpotTestServer, client: HubSpot) -> None:
    server.add_owner("77001", "max.mustermann@example.com", "Max", "Mustermann")
    task = client.crm.objects.tasks.basic_api.create(
        SimplePublicObjectInputForCreate(
            properties={
                "hs_timestamp": "2026-01-15T09:30:00Z",
                "hs_task_subject": "Rückruf",
                "hubspot_owner_id": "77001",
            }
        ),
        _request_timeout=TIMEOUT,
    )
    assert task.properties["hubspot_owner_id"] == "77001"
    with pytest.raises(TasksApiException) as caught:
        client.crm.objects.tasks.basic_api.update(
            task.id,
            SimplePublicObjectInput(properties={"hubspot_owner_id": "1"}),
            _request_timeout=TIMEOUT,
        )
    assert "INVALID_OWNER_ID" in error_body(caught.value)["message"]


def test_batch_create_tasks(server: HubSpotTestServer, client: HubSpot) -> None:
    contact_id = server.add_contact({"firstname": "Erika"})
    inputs = [
        SimplePublicObjectBatchInputForCreate(
            properties={
                "hs_timestamp": "2026-01-15T09:30:00Z",
                "hs_task_subject": f"Rückruf {n}",
                "hs_task_status": "NOT_STARTED",
            },
            associations=[association(contact_id, 204)],
        )
        for n in range(3)
    ]
    response = client.crm.objects.tasks.batch_api.create(
        BatchInputSimplePublicObjectBatchInputForCreate(inputs=inputs), _request_timeout=TIMEOUT
    )
    assert response.status == "COMPLETE"
    assert len(response.results) == 3
    assert len(server.objects("tasks")) == 3
    assert (
        len(
            [
                a
                for a in server.associations("contacts", contact_id)
                if a.to_type == "tasks" and a.type_id == 203
            ]
        )
        == 3
    )
    assert [r.status for r in server.requests("POST", r"/batch/create$")] == [201]

    with pytest.raises(TasksApiException) as caught:
        client.crm.objects.tasks.batch_api.create(
            BatchInputSimplePublicObjectBatchInputForCreate(inputs=inputs[:1] * 101),
            _request_timeout=TIMEOUT,
        )
    assert caught.value.status == 400
    assert len(server.objects("tasks")) == 3


def test_batch_upsert_by_unique_property(server: HubSpotTestServer, client: HubSpot) -> None:
    server.add_property("calls", "sipgate_call_id", unique=True)
    server.add_property("calls", "sipgate_note")

    def upsert(id_property: str, call_id: str, body: str) -> Any:
        return client.crm.objects.calls.batch_api.upsert(
            BatchInputSimplePublicObjectBatchInputUpsert(
                inputs=[
                    SimplePublicObjectBatchInputUpsert(
                        id_property=id_property,
                        id=call_id,
                        properties={"hs_timestamp": "2026-01-15T09:30:00Z", "hs_call_body": body},
                    )
                ]
            ),
            _request_timeout=TIMEOUT,
        )

    first = upsert("sipgate_call_id", "c-0001", "first")
    again = upsert("sipgate_call_id", "c-0001", "second")
    assert first.results[0].new is True
    assert again.results[0].new is False
    assert again.results[0].id == first.results[0].id
    [stored] = server.objects("calls")
    assert stored["properties"]["sipgate_call_id"] == "c-0001"
    assert stored["properties"]["hs_call_body"] == "second"

    with pytest.raises(CallsApiException) as caught:
        upsert("sipgate_note", "n-1", "not unique")
    assert caught.value.status == 400
    assert error_body(caught.value)["category"] == "VALIDATION_ERROR"


def test_duplicate_contact_email_is_a_conflict(server: HubSpotTestServer, client: HubSpot) -> None:
    existing = server.add_contact({"email": "erika@example.com"})
    with pytest.raises(ContactsApiException) as caught:
        client.crm.contacts.basic_api.create(
            ContactInput(properties={"email": "Erika@Example.com"}), _request_timeout=TIMEOUT
        )
    assert caught.value.status == 409
    body = error_body(caught.value)
    assert body["category"] == "CONFLICT"
    assert body["message"] == f"Contact already exists. Existing ID: {existing}"


def test_request_log_keeps_raw_json_types(server: HubSpotTestServer, client: HubSpot) -> None:
    """The SDK does not stringify: a Python int goes out as a JSON number."""
    call = client.crm.objects.calls.basic_api.create(
        SimplePublicObjectInputForCreate(
            properties={
                "hs_timestamp": 1768469400000,
                "hs_call_duration": 42000,
                "hs_call_title": "Anruf von Erika Mustermann",
            }
        ),
        _request_timeout=TIMEOUT,
    )
    # HubSpot stores strings (and normalises datetimes) whatever the client sent.
    assert call.properties["hs_call_duration"] == "42000"
    assert call.properties["hs_timestamp"] == "2026-01-15T09:30:00Z"
    offenders = {(name, kind) for _, name, kind in server.non_string_property_values()}
    assert offenders == {("hs_timestamp", "int"), ("hs_call_duration", "int")}
    [entry] = server.requests("POST", r"/crm/v3/objects/calls$")
    assert entry.json["properties"]["hs_call_duration"] == 42000
    assert entry.status == 201 and entry.query == {}


# ------------------------------------------------------------------------------------------
# Auth, scopes, introspection
# ------------------------------------------------------------------------------------------


def test_unknown_token_gets_401_invalid_authentication(server: HubSpotTestServer) -> None:
    client = HubSpot(access_token="pat-eu1-ffffffff-unknown", host=server.url)
    with pytest.raises(ContactsApiException) as caught:
        client.crm.contacts.basic_api.get_page(_request_timeout=TIMEOUT)
    assert caught.value.status == 401
    assert type(caught.value).__name__ == "UnauthorizedException"
    assert error_body(caught.value)["category"] == "INVALID_AUTHENTICATION"
    missing = requests.get(f"{server.url}/crm/v3/objects/contacts", timeout=TIMEOUT)
    assert missing.status_code == 401
    assert missing.json()["category"] == "INVALID_AUTHENTICATION"
    assert server.rate_limited_requests() == []


def test_missing_scope_gets_403_with_scope_names() -> None:
    read_only = "pat-eu1-11111111-read-only"
    with HubSpotTestServer(tokens={read_only: ["crm.objects.contacts.read"]}) as server:
        client = HubSpot(access_token=read_only, host=server.url)
        client.crm.contacts.basic_api.get_page(_request_timeout=TIMEOUT)
        with pytest.raises(ContactsApiException) as caught:
            client.crm.contacts.basic_api.create(
                ContactInput(properties={"firstname": "Erika"}), _request_timeout=TIMEOUT
            )
        assert caught.value.status == 403
        body = error_body(caught.value)
        assert body["category"] == "MISSING_SCOPES"
        assert body["errors"][0]["context"]["requiredGranularScopes"] == [
            "crm.objects.contacts.write"
        ]
        with pytest.raises(OwnersApiException) as owners:
            client.crm.owners.owners_api.get_page(_request_timeout=TIMEOUT)
        assert error_body(owners.value)["errors"][0]["context"]["requiredGranularScopes"] == [
            "crm.objects.owners.read"
        ]


def test_private_app_token_introspection(server: HubSpotTestServer) -> None:
    server.add_token("pat-eu1-22222222-limited", ["crm.objects.contacts.read", "oauth"])
    response = requests.post(
        f"{server.url}/oauth/v2/private-apps/get/access-token-info",
        json={"tokenKey": "pat-eu1-22222222-limited"},
        timeout=TIMEOUT,
    )
    assert response.status_code == 200
    info = response.json()
    assert set(info) == {"userId", "hubId", "appId", "scopes"}
    assert info["scopes"] == ["crm.objects.contacts.read", "oauth"]
    unknown = requests.post(
        f"{server.url}/oauth/v2/private-apps/get/access-token-info",
        json={"tokenKey": "pat-eu1-nope"},
        timeout=TIMEOUT,
    )
    assert unknown.status_code == 401


def test_oauth_token_metadata_via_sdk(server: HubSpotTestServer) -> None:
    server.add_token("oauth-token-erika", ["crm.objects.contacts.read"], kind="oauth")
    client = HubSpot(host=server.url)
    info = client.oauth.access_tokens_api.get("oauth-token-erika", _request_timeout=TIMEOUT)
    assert info.scopes == ["crm.objects.contacts.read"]
    assert info.hub_id == 9_999_001


def test_oauth_tokens_get_no_daily_rate_limit_headers(server: HubSpotTestServer) -> None:
    server.add_token("oauth-token-max", ALL_SCOPES, kind="oauth")
    private = requests.get(
        f"{server.url}/crm/v3/objects/contacts",
        timeout=TIMEOUT,
        headers={"Authorization": f"Bearer {DEFAULT_TOKEN}"},
    )
    oauth = requests.get(
        f"{server.url}/crm/v3/objects/contacts",
        timeout=TIMEOUT,
        headers={"Authorization": "Bearer oauth-token-max"},
    )
    assert private.headers["X-HubSpot-RateLimit-Daily"] == "250000"
    assert "X-HubSpot-RateLimit-Daily" not in oauth.headers
    assert oauth.headers["X-HubSpot-RateLimit-Max"] == "100"


# ------------------------------------------------------------------------------------------
# Rate limits
# ------------------------------------------------------------------------------------------


def test_ten_second_budget_gives_429_with_policy_name() -> None:
    clock = ManualClock()
    with HubSpotTestServer(ten_second_limit=3, clock=clock) as server:
        client = HubSpot(access_token=DEFAULT_TOKEN, host=server.url)
        contact_id = server.add_contact({"firstname": "Erika"})
        for _ in range(3):
            client.crm.contacts.basic_api.get_by_id(contact_id, _request_timeout=TIMEOUT)
        with pytest.raises(ContactsApiException) as caught:
            client.crm.contacts.basic_api.get_by_id(contact_id, _request_timeout=TIMEOUT)
        error = caught.value
        assert error.status == 429
        assert type(error) is ContactsApiException  # no dedicated subclass for 429
        body = error_body(error)
        assert body["policyName"] == "TEN_SECONDLY_ROLLING"
        assert body["errorType"] == "RATE_LIMIT"
        assert error.headers["X-HubSpot-RateLimit-Remaining"] == "0"
        assert error.headers["X-HubSpot-RateLimit-Max"] == "3"
        assert "Retry-After" not in error.headers
        # No Retry-After, so urllib3 did not retry the GET behind our back.
        assert len(server.requests("GET")) == 4
        assert len(server.rate_limited_requests()) == 1

        clock.advance(10.0)
        client.crm.contacts.basic_api.get_by_id(contact_id, _request_timeout=TIMEOUT)


def test_retry_after_makes_urllib3_retry_gets_silently() -> None:
    """If HubSpot ever sends Retry-After, urllib3's default Retry re-sends GETs (not POSTs)."""
    with HubSpotTestServer(ten_second_limit=1, retry_after_seconds=0) as server:
        client = HubSpot(access_token=DEFAULT_TOKEN, host=server.url)
        server.fail_next(r"/crm/v3/objects/contacts$", 429, headers={"Retry-After": "0"})
        page = client.crm.contacts.basic_api.get_page(_request_timeout=TIMEOUT)
        assert page.results == []
        assert [r.status for r in server.requests("GET")] == [429, 200]

        server.reset_rate_limits()
        client.crm.contacts.basic_api.get_page(_request_timeout=TIMEOUT)
        with pytest.raises(ContactsApiException) as caught:
            client.crm.contacts.basic_api.create(
                ContactInput(properties={"firstname": "Max"}), _request_timeout=TIMEOUT
            )
        assert caught.value.headers["Retry-After"] == "0"
        assert [r.status for r in server.requests("POST")] == [429]  # POST: no retry


def test_search_has_its_own_per_second_budget() -> None:
    clock = ManualClock()
    with HubSpotTestServer(clock=clock) as server:
        client = HubSpot(access_token=DEFAULT_TOKEN, host=server.url)
        for _ in range(5):
            client.crm.contacts.search_api.do_search(
                phone_search(ERIKA_NSN), _request_timeout=TIMEOUT
            )
        with pytest.raises(ContactsApiException) as caught:
            client.crm.contacts.search_api.do_search(
                phone_search(ERIKA_NSN), _request_timeout=TIMEOUT
            )
        body = error_body(caught.value)
        assert caught.value.status == 429
        assert body["errorType"] == "RATE_LIMIT"
        assert body["message"] == "You have reached your secondly limit."
        assert "policyName" not in body  # undocumented for search; see module docstring
        # Search responses carry no X-HubSpot-RateLimit-* headers (documented).
        assert not [h for h in caught.value.headers if h.lower().startswith("x-hubspot-ratel")]
        # Other endpoints are unaffected by the search budget.
        client.crm.contacts.basic_api.get_page(_request_timeout=TIMEOUT)
        clock.advance(1.0)
        client.crm.contacts.search_api.do_search(phone_search(ERIKA_NSN), _request_timeout=TIMEOUT)


def test_daily_budget_gives_429_daily(server: HubSpotTestServer, client: HubSpot) -> None:
    client.crm.contacts.basic_api.get_page(_request_timeout=TIMEOUT)
    server.exhaust_daily()
    with pytest.raises(ContactsApiException) as caught:
        client.crm.contacts.basic_api.get_page(_request_timeout=TIMEOUT)
    body = error_body(caught.value)
    assert caught.value.status == 429
    assert body["policyName"] == "DAILY"
    assert body["message"] == "You have reached your daily limit."
    assert caught.value.headers["X-HubSpot-RateLimit-Daily-Remaining"] == "0"
    server.reset_daily()
    client.crm.contacts.basic_api.get_page(_request_timeout=TIMEOUT)


# ------------------------------------------------------------------------------------------
# Fault injection and timeouts
# ------------------------------------------------------------------------------------------


def test_delay_after_commit_times_out_a_post_while_the_object_exists(
    server: HubSpotTestServer, client: HubSpot
) -> None:
    contact_id = server.add_contact({"firstname": "Erika"})
    server.delay_after_commit(r"/crm/v3/objects/calls$", 2.0)
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        client.crm.objects.calls.basic_api.create(
            SimplePublicObjectInputForCreate(
                properties={"hs_timestamp": "2026-01-15T09:30:00Z"},
                associations=[association(contact_id, 194)],
            ),
            _request_timeout=0.3,
        )
    [call] = server.objects("calls")  # the write happened: the outcome was unknown
    assert server.associations("calls", call["id"])[0].to_id == contact_id
    [entry] = server.requests("POST", r"/crm/v3/objects/calls$")  # POSTs are never retried
    assert entry.status == 201 and entry.delayed_seconds == 2.0


def test_urllib3_retries_timed_out_gets_three_times_by_default(
    server: HubSpotTestServer, client: HubSpot
) -> None:
    contact_id = server.add_contact({"firstname": "Erika"})
    server.delay_after_commit(r"/crm/v3/objects/contacts/", 1.0, count=None)
    with pytest.raises(urllib3.exceptions.MaxRetryError):
        client.crm.contacts.basic_api.get_by_id(contact_id, _request_timeout=0.2)
    assert len(server.requests("GET")) == 4  # 1 + Retry.DEFAULT's 3 retries

    server.clear_request_log()
    no_retry = HubSpot(access_token=DEFAULT_TOKEN, host=server.url, retry=Retry(0, read=False))
    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        no_retry.crm.contacts.basic_api.get_by_id(contact_id, _request_timeout=0.2)
    assert len(server.requests("GET")) == 1


def test_fail_next_injects_errors_without_touching_state(
    server: HubSpotTestServer, client: HubSpot
) -> None:
    server.fail_next(r"/search$", 502, count=1)
    with pytest.raises(ContactsApiException) as caught:
        client.crm.contacts.search_api.do_search(phone_search(ERIKA_NSN), _request_timeout=TIMEOUT)
    assert caught.value.status == 502
    assert type(caught.value).__name__ == "ServiceException"
    assert (
        client.crm.contacts.search_api.do_search(
            phone_search(ERIKA_NSN), _request_timeout=TIMEOUT
        ).total
        == 0
    )

    server.fail_next(r"/crm/v3/objects/contacts$", 429, method="POST")
    with pytest.raises(ContactsApiException) as limited:
        client.crm.contacts.basic_api.create(
            ContactInput(properties={"firstname": "Max"}), _request_timeout=TIMEOUT
        )
    assert error_body(limited.value)["policyName"] == "TEN_SECONDLY_ROLLING"
    assert server.objects("contacts") == []
    assert [e.injected for e in server.requests(path_regex="contacts")] == [True, False, True]
    assert server.rate_limited_requests() == []  # injected 429s are not budget overruns


# ------------------------------------------------------------------------------------------
# Owners and properties
# ------------------------------------------------------------------------------------------


def test_owners_by_email_and_id(server: HubSpotTestServer, client: HubSpot) -> None:
    server.add_owner("77001", "max.mustermann@example.com", "Max", "Mustermann", user_id=9101)
    server.add_owner("77002", "erika.mustermann@example.com", "Erika", "Mustermann")
    page = client.crm.owners.owners_api.get_page(
        email="Max.Mustermann@example.com", _request_timeout=TIMEOUT
    )
    assert [o.id for o in page.results] == ["77001"]
    assert page.results[0].user_id == 9101
    owner = client.crm.owners.owners_api.get_by_id(
        9101, id_property="userId", _request_timeout=TIMEOUT
    )
    assert owner.email == "max.mustermann@example.com"
    with pytest.raises(OwnersApiException) as caught:
        client.crm.owners.owners_api.get_by_id(1, _request_timeout=TIMEOUT)
    assert caught.value.status == 404


def test_properties_list_read_and_create(server: HubSpotTestServer, client: HubSpot) -> None:
    names = {
        p.name
        for p in client.crm.properties.core_api.get_all(
            "contacts", _request_timeout=TIMEOUT
        ).results
    }
    assert {"phone", "mobilephone", "hs_searchable_calculated_phone_number"} <= names
    created = client.crm.properties.core_api.create(
        "calls",
        PropertyCreate(
            name="sipgate_call_id",
            label="sipgate call id",
            type="string",
            field_type="text",
            group_name="callinformation",
            has_unique_value=True,
        ),
        _request_timeout=TIMEOUT,
    )
    assert created.has_unique_value is True
    read = client.crm.properties.core_api.get_by_name(
        "calls", "sipgate_call_id", _request_timeout=TIMEOUT
    )
    assert read.name == "sipgate_call_id"
    response = client.crm.objects.calls.batch_api.upsert(
        BatchInputSimplePublicObjectBatchInputUpsert(
            inputs=[
                SimplePublicObjectBatchInputUpsert(
                    id_property="sipgate_call_id",
                    id="c-0002",
                    properties={"hs_timestamp": "2026-01-15T09:30:00Z"},
                )
            ]
        ),
        _request_timeout=TIMEOUT,
    )
    assert response.results[0].new is True


# ------------------------------------------------------------------------------------------
# SDK facts the adapter depends on
# ------------------------------------------------------------------------------------------


def test_sdk_builds_a_new_api_client_on_every_attribute_access(client: HubSpot) -> None:
    first, second = client.crm.contacts.basic_api, client.crm.contacts.basic_api
    assert first is not second
    assert first.api_client is not second.api_client
    assert first.api_client.rest_client.pool_manager is not (
        second.api_client.rest_client.pool_manager
    )


def test_each_sdk_package_has_its_own_api_exception() -> None:
    """``client.crm.objects.calls`` raises ``hubspot.crm.objects.calls.ApiException``, etc."""
    classes = [ObjectsApiException, CallsApiException, TasksApiException, ContactsApiException]
    for one in classes:
        for other in classes:
            assert one is other or not issubclass(one, other)


def test_api_exception_body_and_headers_with_installed_urllib3(
    server: HubSpotTestServer, client: HubSpot
) -> None:
    with pytest.raises(ContactsApiException) as caught:
        client.crm.contacts.basic_api.get_by_id("424242", _request_timeout=TIMEOUT)
    error = caught.value
    assert error.status == 404
    assert isinstance(error.body, str)
    assert isinstance(error.headers, urllib3.HTTPHeaderDict)
    assert error.headers["content-type"].startswith("application/json")


def test_what_urllib3_2_6_0_broke(
    server: HubSpotTestServer, client: HubSpot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """urllib3 2.6.0 removed HTTPResponse.getheaders()/getheader(); 2.6.1 restored them.

    Simulate the removal: every SDK call then fails with AttributeError, successes (the
    SDK reads the content-type via getheader) as well as errors (ApiException.__init__
    calls getheaders), so no ApiException with status/body ever reaches the caller.
    """
    contact_id = server.add_contact({"firstname": "Erika"})
    monkeypatch.delattr(urllib3.response.BaseHTTPResponse, "getheaders")
    monkeypatch.delattr(urllib3.response.BaseHTTPResponse, "getheader")
    with pytest.raises(AttributeError, match="getheader"):
        client.crm.contacts.basic_api.get_by_id(contact_id, _request_timeout=TIMEOUT)
    with pytest.raises(AttributeError, match="getheaders"):
        client.crm.contacts.basic_api.get_by_id("424242", _request_timeout=TIMEOUT)
