"""The Salesforce test server's org schema: sObjects, fields, picklists, describe, formats."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

__all__ = [
    "DATE_RE",
    "ENGLISH_TASK_PRIORITIES",
    "ENGLISH_TASK_STATUSES",
    "GERMAN_TASK_PRIORITIES",
    "GERMAN_TASK_STATUSES",
    "KEY_PREFIXES",
    "SOAP_TYPES",
    "FieldDef",
    "PicklistValue",
    "SObjectDef",
    "TaskPriorityValue",
    "TaskStatusValue",
    "build_standard_schema",
    "format_datetime",
    "parse_datetime",
]

#: Key prefixes (first three characters of record ids) of the supported sObjects.
KEY_PREFIXES: dict[str, str] = {
    "Account": "001",
    "Contact": "003",
    "User": "005",
    "Opportunity": "006",
    "Lead": "00Q",
    "Task": "00T",
    "TaskStatus": "01J",
    "TaskPriority": "01J",
    "ContentNote": "069",
    "ContentDocument": "069",
    "ContentDocumentLink": "06A",
    "Case": "500",
}

DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_DATETIME_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,6}))?(Z|[+-]\d{2}:?\d{2})?$"
)
SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "int": "xsd:int",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
    "base64": "xsd:base64Binary",
}


def format_datetime(moment: datetime) -> str:
    """`moment` as Salesforce writes a dateTime: ``2024-05-01T10:00:00.000+0000`` (UTC)."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def parse_datetime(value: str) -> datetime | None:
    """Parse Salesforce date/dateTime strings (``2024-05-01``, ``...T10:00:00.000+0000``)."""
    if DATE_RE.match(value):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    match = _DATETIME_RE.match(value)
    if not match:
        return None
    day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0").ljust(6, "0")[:6])
    moment = datetime.fromisoformat(f"{day}T{hour}:{minute}:{second}").replace(microsecond=micro)
    if zone in (None, "Z"):
        return moment.replace(tzinfo=UTC)
    zone = zone.replace(":", "")
    offset = datetime.strptime(zone, "%z").tzinfo
    return moment.replace(tzinfo=offset).astimezone(UTC)


@dataclass(frozen=True)
class PicklistValue:
    """One entry of a picklist as reported by describe (``picklistValues``)."""

    value: str
    label: str | None = None
    active: bool = True
    default: bool = False

    def describe(self) -> dict[str, Any]:
        """Return the describe representation (``active``, ``defaultValue``, ...)."""
        return {
            "active": self.active,
            "defaultValue": self.default,
            "label": self.label or self.value,
            "validFor": None,
            "value": self.value,
        }


@dataclass
class FieldDef:
    """Metadata of one sObject field, used for validation, SOQL and describe."""

    name: str
    type: str
    label: str = ""
    length: int = 0
    createable: bool = True
    updateable: bool = True
    filterable: bool = True
    nillable: bool = True
    defaulted_on_create: bool = False
    required: bool = False
    picklist_values: list[PicklistValue] = field(default_factory=list)
    restricted_picklist: bool = False
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    external_id: bool = False
    unique: bool = False
    custom: bool = False
    calculated: bool = False

    def describe(self) -> dict[str, Any]:
        """Return the field as Salesforce's ``sobjects/{Type}/describe`` lists it."""
        return {
            "name": self.name,
            "label": self.label or self.name,
            "type": self.type,
            "soapType": SOAP_TYPES.get(self.type, "xsd:string"),
            "length": self.length,
            "byteLength": self.length * 3,
            "precision": 18 if self.type in {"double", "currency", "percent"} else 0,
            "scale": 2 if self.type in {"currency", "percent"} else 0,
            "digits": 9 if self.type == "int" else 0,
            "createable": self.createable,
            "updateable": self.updateable,
            "filterable": self.filterable,
            "sortable": self.filterable,
            "groupable": self.filterable and self.type not in {"double", "currency"},
            "nillable": self.nillable,
            "defaultedOnCreate": self.defaulted_on_create,
            "calculated": self.calculated,
            "custom": self.custom,
            "externalId": self.external_id,
            "unique": self.unique,
            "idLookup": self.type == "id" or self.external_id,
            "caseSensitive": False,
            "htmlFormatted": False,
            "nameField": self.name == "Name",
            "picklistValues": [value.describe() for value in self.picklist_values],
            "restrictedPicklist": self.restricted_picklist,
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship_name,
            "polymorphicForeignKey": len(self.reference_to) > 1,
            "defaultValue": None,
        }


@dataclass
class SObjectDef:
    """Metadata of one sObject type: name, key prefix and fields."""

    name: str
    label: str
    key_prefix: str
    fields: dict[str, FieldDef] = field(default_factory=dict)
    createable: bool = True
    updateable: bool = True
    deletable: bool = True
    queryable: bool = True
    searchable: bool = True

    def field(self, name: str) -> FieldDef | None:
        """Return the field called ``name`` (case-insensitive) or ``None``."""
        return self.fields.get(name.lower())

    def add(self, definition: FieldDef) -> None:
        """Add or replace a field."""
        self.fields[definition.name.lower()] = definition

    def relationship(self, name: str) -> FieldDef | None:
        """Return the reference field whose relationship name is ``name``."""
        lowered = name.lower()
        for definition in self.fields.values():
            if definition.relationship_name and definition.relationship_name.lower() == lowered:
                return definition
        return None

    def describe(self, version: str) -> dict[str, Any]:
        """Return the ``sobjects/{Type}/describe`` body."""
        base = f"/services/data/v{version}/sobjects/{self.name}"
        return {
            **self.summary(version),
            "fields": [definition.describe() for definition in self.fields.values()],
            "childRelationships": [],
            "recordTypeInfos": [],
            "urls": {
                "sobject": base,
                "describe": f"{base}/describe",
                "rowTemplate": f"{base}/{{ID}}",
            },
        }

    def summary(self, version: str) -> dict[str, Any]:
        """Return the entry of this type in the global describe (``GET sobjects``)."""
        base = f"/services/data/v{version}/sobjects/{self.name}"
        return {
            "name": self.name,
            "label": self.label,
            "labelPlural": f"{self.label}s",
            "keyPrefix": self.key_prefix,
            "custom": False,
            "createable": self.createable,
            "updateable": self.updateable,
            "deletable": self.deletable,
            "queryable": self.queryable,
            "searchable": self.searchable,
            "urls": {"sobject": base, "describe": f"{base}/describe"},
        }


@dataclass(frozen=True)
class TaskStatusValue:
    """A ``TaskStatus`` row / value of the Task ``Status`` picklist.

    ``api_name`` is the value stored in ``Task.Status``; ``master_label`` (defaults to the
    API name) is what ``SELECT MasterLabel FROM TaskStatus`` returns; ``label`` is the
    (translated) label reported by describe.
    """

    api_name: str
    label: str | None = None
    master_label: str | None = None
    is_closed: bool = False
    is_default: bool = False


@dataclass(frozen=True)
class TaskPriorityValue:
    """A ``TaskPriority`` row / value of the Task ``Priority`` picklist."""

    api_name: str
    label: str | None = None
    master_label: str | None = None
    is_high_priority: bool = False
    is_default: bool = False


ENGLISH_TASK_STATUSES: tuple[TaskStatusValue, ...] = (
    TaskStatusValue("Not Started", is_default=True),
    TaskStatusValue("In Progress"),
    TaskStatusValue("Completed", is_closed=True),
    TaskStatusValue("Waiting on someone else"),
    TaskStatusValue("Deferred"),
)
GERMAN_TASK_STATUSES: tuple[TaskStatusValue, ...] = (
    TaskStatusValue("Offen", is_default=True),
    TaskStatusValue("In Bearbeitung"),
    TaskStatusValue("Erledigt", is_closed=True),
)
ENGLISH_TASK_PRIORITIES: tuple[TaskPriorityValue, ...] = (
    TaskPriorityValue("High", is_high_priority=True),
    TaskPriorityValue("Normal", is_default=True),
    TaskPriorityValue("Low"),
)
GERMAN_TASK_PRIORITIES: tuple[TaskPriorityValue, ...] = (
    TaskPriorityValue("Hoch", is_high_priority=True),
    TaskPriorityValue("Normal", is_default=True),
    TaskPriorityValue("Niedrig"),
)


def _picklist(*values: str, default: str | None = None) -> list[PicklistValue]:
    return [PicklistValue(value, default=value == default) for value in values]


def _string(name: str, length: int, label: str = "", **kwargs: Any) -> FieldDef:
    return FieldDef(name, "string", label or name, length, **kwargs)


def _phone(name: str, label: str = "") -> FieldDef:
    return FieldDef(name, "phone", label or name, 40)


def _description(label: str) -> FieldDef:
    # Long text areas can't be filtered in SOQL.
    return FieldDef("Description", "textarea", label, 32000, filterable=False)


def _readonly(definition: FieldDef) -> FieldDef:
    definition.createable = False
    definition.updateable = False
    return definition


def _reference(
    name: str, targets: tuple[str, ...], relationship: str, label: str = "", **kwargs: Any
) -> FieldDef:
    return FieldDef(
        name,
        "reference",
        label or name,
        18,
        reference_to=targets,
        relationship_name=relationship,
        **kwargs,
    )


def _system_fields(owned: bool) -> list[FieldDef]:
    fields = [
        _readonly(FieldDef("Id", "id", "Record ID", 18, nillable=False, defaulted_on_create=True)),
        _readonly(FieldDef("IsDeleted", "boolean", "Deleted", nillable=False)),
        _readonly(FieldDef("CreatedDate", "datetime", "Created Date", nillable=False)),
        _readonly(_reference("CreatedById", ("User",), "CreatedBy", "Created By ID")),
        _readonly(FieldDef("LastModifiedDate", "datetime", "Last Modified Date", nillable=False)),
        _readonly(
            _reference("LastModifiedById", ("User",), "LastModifiedBy", "Last Modified By ID")
        ),
        _readonly(FieldDef("SystemModstamp", "datetime", "System Modstamp", nillable=False)),
    ]
    if owned:
        fields.append(
            _reference(
                "OwnerId", ("User",), "Owner", "Owner ID", nillable=False, defaulted_on_create=True
            )
        )
    return fields


def _person_name_fields() -> list[FieldDef]:
    return [
        _string("FirstName", 40, "First Name"),
        _string("LastName", 80, "Last Name", nillable=False, required=True),
        _readonly(_string("Name", 121, "Full Name", calculated=True)),
    ]


def _make(name: str, label: str, fields: Iterable[FieldDef], **kwargs: Any) -> SObjectDef:
    definition = SObjectDef(name, label, KEY_PREFIXES[name], **kwargs)
    for item in fields:
        definition.add(item)
    return definition


def build_standard_schema() -> dict[str, SObjectDef]:
    """A fresh copy of the standard sObjects the server emulates, by API name."""
    who = ("Contact", "Lead")
    what = ("Account", "Opportunity", "Case")
    schema = [
        _make(
            "Account",
            "Account",
            [
                *_system_fields(owned=True),
                _string("Name", 255, "Account Name", nillable=False, required=True),
                _phone("Phone", "Account Phone"),
                _phone("Fax", "Account Fax"),
                FieldDef("Website", "url", "Website", 255),
                FieldDef(
                    "Type",
                    "picklist",
                    "Account Type",
                    255,
                    picklist_values=_picklist("Prospect", "Customer - Direct", "Other"),
                ),
                _string("BillingCity", 40, "Billing City"),
                _description("Account Description"),
            ],
        ),
        _make(
            "Contact",
            "Contact",
            [
                *_system_fields(owned=True),
                *_person_name_fields(),
                _string("Title", 128),
                _string("Department", 80),
                FieldDef("Email", "email", "Email", 80),
                _phone("Phone", "Business Phone"),
                _phone("MobilePhone", "Mobile Phone"),
                _phone("HomePhone", "Home Phone"),
                _phone("OtherPhone", "Other Phone"),
                _phone("AssistantPhone", "Asst. Phone"),
                _phone("Fax", "Business Fax"),
                _reference("AccountId", ("Account",), "Account", "Account ID"),
                _string("MailingCity", 40, "Mailing City"),
                _description("Contact Description"),
            ],
        ),
        _make(
            "Lead",
            "Lead",
            [
                *_system_fields(owned=True),
                *_person_name_fields(),
                _string("Company", 255, "Company", nillable=False, required=True),
                _string("Title", 128),
                FieldDef("Email", "email", "Email", 80),
                _phone("Phone"),
                _phone("MobilePhone", "Mobile Phone"),
                _phone("Fax"),
                FieldDef(
                    "Status",
                    "picklist",
                    "Status",
                    255,
                    nillable=False,
                    defaulted_on_create=True,
                    picklist_values=_picklist(
                        "Open - Not Contacted",
                        "Working - Contacted",
                        "Closed - Converted",
                        "Closed - Not Converted",
                        default="Open - Not Contacted",
                    ),
                ),
                FieldDef(
                    "IsConverted",
                    "boolean",
                    "Converted",
                    updateable=False,
                    nillable=False,
                    defaulted_on_create=True,
                ),
                _readonly(
                    _reference(
                        "ConvertedContactId", ("Contact",), "ConvertedContact", "Converted Contact"
                    )
                ),
                _readonly(
                    _reference(
                        "ConvertedAccountId", ("Account",), "ConvertedAccount", "Converted Account"
                    )
                ),
                _readonly(FieldDef("ConvertedDate", "date", "Converted Date")),
                _description("Description"),
            ],
        ),
        _make(
            "Opportunity",
            "Opportunity",
            [
                *_system_fields(owned=True),
                _string("Name", 120, "Opportunity Name", nillable=False, required=True),
                _reference("AccountId", ("Account",), "Account", "Account ID"),
                FieldDef(
                    "StageName",
                    "picklist",
                    "Stage",
                    255,
                    nillable=False,
                    required=True,
                    picklist_values=_picklist(
                        "Prospecting",
                        "Qualification",
                        "Negotiation/Review",
                        "Closed Won",
                        "Closed Lost",
                    ),
                ),
                FieldDef("CloseDate", "date", "Close Date", nillable=False, required=True),
                FieldDef("Amount", "currency", "Amount"),
                _readonly(FieldDef("IsClosed", "boolean", "Closed", nillable=False)),
                _readonly(FieldDef("IsWon", "boolean", "Won", nillable=False)),
                _description("Description"),
            ],
        ),
        _make(
            "Task",
            "Task",
            [
                *_system_fields(owned=True),
                FieldDef(
                    "Subject",
                    "combobox",
                    "Subject",
                    255,
                    picklist_values=_picklist("Call", "Send Letter", "Send Quote", "Other"),
                ),
                _description("Comments"),
                FieldDef(
                    "Status",
                    "picklist",
                    "Status",
                    40,
                    nillable=False,
                    defaulted_on_create=True,
                    restricted_picklist=True,
                ),
                FieldDef(
                    "Priority",
                    "picklist",
                    "Priority",
                    40,
                    nillable=False,
                    defaulted_on_create=True,
                    restricted_picklist=True,
                ),
                _readonly(FieldDef("IsClosed", "boolean", "Closed", nillable=False)),
                _readonly(FieldDef("IsHighPriority", "boolean", "High Priority", nillable=False)),
                _reference("WhoId", who, "Who", "Name ID"),
                _reference("WhatId", what, "What", "Related To ID"),
                _readonly(_reference("AccountId", ("Account",), "Account", "Account ID")),
                FieldDef("ActivityDate", "date", "Due Date Only"),
                _string("CallObject", 255, "Call Object Identifier"),
                FieldDef(
                    "CallType",
                    "picklist",
                    "Call Type",
                    40,
                    restricted_picklist=True,
                    picklist_values=_picklist("Internal", "Inbound", "Outbound"),
                ),
                FieldDef("CallDurationInSeconds", "int", "Call Duration"),
                _string("CallDisposition", 255, "Call Result"),
                FieldDef(
                    "TaskSubtype",
                    "picklist",
                    "Task Subtype",
                    40,
                    updateable=False,
                    defaulted_on_create=True,
                    restricted_picklist=True,
                    picklist_values=_picklist(
                        "Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn"
                    ),
                ),
                FieldDef(
                    "Type",
                    "picklist",
                    "Type",
                    40,
                    picklist_values=_picklist("Call", "Email", "Meeting", "Other"),
                ),
            ],
        ),
        _make(
            "Case",
            "Case",
            [
                *_system_fields(owned=True),
                _readonly(_string("CaseNumber", 30, "Case Number", calculated=True)),
                _string("Subject", 255, "Subject"),
                _description("Description"),
                FieldDef(
                    "Status",
                    "picklist",
                    "Status",
                    40,
                    defaulted_on_create=True,
                    picklist_values=_picklist(
                        "New", "Working", "Escalated", "Closed", default="New"
                    ),
                ),
                FieldDef(
                    "Priority",
                    "picklist",
                    "Priority",
                    40,
                    defaulted_on_create=True,
                    picklist_values=_picklist("High", "Medium", "Low", default="Medium"),
                ),
                FieldDef(
                    "Origin",
                    "picklist",
                    "Case Origin",
                    40,
                    picklist_values=_picklist("Phone", "Email", "Web"),
                ),
                _reference("ContactId", ("Contact",), "Contact", "Contact ID"),
                _reference("AccountId", ("Account",), "Account", "Account ID"),
                _phone("SuppliedPhone", "Web Phone"),
                _readonly(FieldDef("IsClosed", "boolean", "Closed", nillable=False)),
            ],
        ),
        _make(
            "ContentNote",
            "Note",
            [
                *_system_fields(owned=True),
                _string("Title", 255, "Title", nillable=False, required=True),
                FieldDef("Content", "base64", "Content", 0),
                _readonly(_string("TextPreview", 255, "Text Preview", calculated=True)),
                _readonly(_string("FileType", 20, "File Type")),
            ],
            searchable=False,
        ),
        _make(
            "ContentDocumentLink",
            "Content Document Link",
            [
                _readonly(
                    FieldDef("Id", "id", "Record ID", 18, nillable=False, defaulted_on_create=True)
                ),
                _readonly(FieldDef("IsDeleted", "boolean", "Deleted", nillable=False)),
                _readonly(FieldDef("SystemModstamp", "datetime", "System Modstamp")),
                _reference(
                    "ContentDocumentId",
                    ("ContentDocument",),
                    "ContentDocument",
                    "ContentDocument ID",
                    updateable=False,
                    nillable=False,
                    required=True,
                ),
                _reference(
                    "LinkedEntityId",
                    ("Account", "Contact", "Lead", "Opportunity", "Case", "User"),
                    "LinkedEntity",
                    "Linked Entity ID",
                    updateable=False,
                    nillable=False,
                    required=True,
                ),
                FieldDef(
                    "ShareType",
                    "picklist",
                    "Share Type",
                    40,
                    defaulted_on_create=True,
                    restricted_picklist=True,
                    picklist_values=_picklist("V", "C", "I", default="V"),
                ),
                FieldDef(
                    "Visibility",
                    "picklist",
                    "Visibility",
                    40,
                    defaulted_on_create=True,
                    restricted_picklist=True,
                    picklist_values=_picklist(
                        "AllUsers", "InternalUsers", "SharedUsers", default="AllUsers"
                    ),
                ),
            ],
            searchable=False,
        ),
        _make(
            "User",
            "User",
            [
                *_system_fields(owned=False),
                _string("Username", 80, "Username", nillable=False, required=True, unique=True),
                *_person_name_fields(),
                FieldDef("Email", "email", "Email", 128, nillable=False, required=True),
                _string("Alias", 8, "Alias"),
                FieldDef("IsActive", "boolean", "Active", nillable=False, defaulted_on_create=True),
                _phone("Phone"),
                _phone("MobilePhone", "Mobile"),
                _string("Title", 80),
                _string("Department", 80),
            ],
        ),
    ]
    for virtual, extra in (
        ("TaskStatus", [FieldDef("IsClosed", "boolean", "Is Closed")]),
        ("TaskPriority", [FieldDef("IsHighPriority", "boolean", "Is High Priority")]),
    ):
        fields = [
            *_system_fields(owned=False),
            _string("MasterLabel", 255, "Master Label"),
            _string("ApiName", 255, "API Name"),
            *extra,
            FieldDef("IsDefault", "boolean", "Is Default"),
            FieldDef("SortOrder", "int", "Sort Order"),
        ]
        for item in fields:
            item.createable = False
            item.updateable = False
        schema.append(
            _make(
                virtual,
                virtual,
                fields,
                createable=False,
                updateable=False,
                deletable=False,
                searchable=False,
            )
        )
    return {definition.name: definition for definition in schema}
