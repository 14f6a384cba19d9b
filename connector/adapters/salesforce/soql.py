"""SOQL and SOSL text: escaping, the phone search, and the fields a search returns.

Every value that ends up in a query goes through `escape_sosl` (inside ``FIND {...}``) or
`_soql_string` (a SOQL string literal); `_select` is the one place a SOQL query is put together.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final
from urllib.parse import urlencode

from connector.phone import PhoneNumber

_SOBJECTS: Final = {"contact": "Contact", "lead": "Lead", "account": "Account"}
_OBJECT_TYPES: Final = {sobject: object_type for object_type, sobject in _SOBJECTS.items()}
#: The standard phone fields of each searched object. ``IN PHONE FIELDS`` searches every phone
#: field, so a search returns all of them: a hit whose number is in none of the returned fields
#: cannot pass the re-check. Custom phone fields are searched too but not returned (their names
#: are not known): a record whose number is only in a custom phone field needs ``match_field``.
_PHONE_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "contact": ("Phone", "MobilePhone", "HomePhone", "OtherPhone", "AssistantPhone", "Fax"),
    "lead": ("Phone", "MobilePhone", "Fax"),
    "account": ("Phone", "Fax"),
}
#: The phone fields of person accounts (on Account, with ``person_account`` searched).
_PERSON_PHONE_FIELDS: Final = (
    "PersonMobilePhone",
    "PersonHomePhone",
    "PersonOtherPhone",
    "PersonAssistantPhone",
)
#: Every phone field name a search may return (a hit's ``phones`` come from these).
_ALL_PHONE_FIELDS: Final = tuple(
    dict.fromkeys(
        [name for names in _PHONE_FIELDS.values() for name in names] + list(_PERSON_PHONE_FIELDS)
    )
)
_RETURNING_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "contact": (
        "Id",
        "Name",
        *_PHONE_FIELDS["contact"],
        "AccountId",
        "OwnerId",
        "LastModifiedDate",
    ),
    "lead": ("Id", "Name", *_PHONE_FIELDS["lead"], "OwnerId", "LastModifiedDate"),
    "account": ("Id", "Name", *_PHONE_FIELDS["account"], "OwnerId", "LastModifiedDate"),
}
_PERSON_ACCOUNT_FIELDS: Final = (*_PERSON_PHONE_FIELDS, "PersonContactId", "IsPersonAccount")
_SEARCH_FILTERS: Final = {"lead": "IsConverted = false"}

#: Salesforce's reserved characters in SOSL search terms (FIND {...}).
_SOSL_RESERVED: Final = frozenset("?&|!{}[]()^~*:\\\"'+-")
#: Words SOSL reads as operators inside ``FIND {...}``.
_SOSL_OPERATORS: Final = frozenset({"AND", "OR", "NOT"})
#: Records a name search returns at most; a person picks among them.
_NAME_LIMIT: Final = 50
_SOQL_ESCAPES: Final = {
    "\\": "\\\\",
    "'": "\\'",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\b": "\\b",
    "\f": "\\f",
}


def escape_sosl(text: str) -> str:
    """`text` with every SOSL reserved character (``? & | ! { } [ ] ( ) ^ ~ * : \\ " ' + -``)
    preceded by a backslash, safe inside ``FIND {...}`` and inside a quoted phrase there.

    ``+49 (211) 635534-00`` → ``\\+49 \\(211\\) 635534\\-00``.
    """
    return "".join("\\" + char if char in _SOSL_RESERVED else char for char in text)


def escape_soql(text: str) -> str:
    """`text` escaped for a SOQL string literal (between single quotes): backslash, quote and
    control characters get their backslash escapes."""
    return "".join(_SOQL_ESCAPES.get(char, char) for char in text)


def _soql_string(text: str) -> str:
    return f"'{escape_soql(text)}'"


def _soql_ends_with(text: str) -> str:
    """A SOQL ``LIKE`` pattern literal for values ending in `text` (its ``%`` and ``_`` escaped)."""
    escaped = escape_soql(text).replace("%", "\\%").replace("_", "\\_")
    return f"'%{escaped}'"


def _select(selected: str, sobject: str, where: str, tail: str = "") -> str:
    """A SOQL query; every value inside `where` must come from `_soql_string`."""
    query = f"SELECT {selected} FROM {sobject} WHERE {where}"  # noqa: S608 - values are escaped
    return f"{query} {tail}" if tail else query


def build_sosl(
    number: PhoneNumber, object_types: Sequence[str], *, person_accounts: bool = False
) -> str:
    """The SOSL phone search for `number` over `object_types` (``contact``, ``lead``,
    ``account``), as `SalesforceAdapter.search_by_phone` sends it.

    Every spelling of `number` (`PhoneNumber.variants`) becomes a quoted, escaped phrase, OR-ed
    in one ``FIND {...} IN PHONE FIELDS``; ``RETURNING`` lists the fields a `CrmRecord` needs,
    Leads without converted ones. `person_accounts` adds the person account phone fields and
    ``PersonContactId`` to ``Account``.
    """
    terms = " OR ".join(f'"{escape_sosl(variant)}"' for variant in number.variants())
    return f"FIND {{{terms}}} IN PHONE FIELDS RETURNING {_returning(object_types, person_accounts)}"


def build_name_sosl(
    words: Sequence[str], object_types: Sequence[str], *, person_accounts: bool = False
) -> str:
    """The SOSL name search for `words` (from `name_words`) over `object_types`, as
    `SalesforceAdapter.search_by_name` sends it: every word a prefix (``word*``), AND-ed, in
    ``NAME FIELDS``; a word that is a SOSL operator (``and``, ``or``, ``not``) is a quoted
    phrase instead. Every word is escaped besides; ``RETURNING`` as in `build_sosl`."""
    terms = " AND ".join(
        f'"{escape_sosl(word)}"' if word.upper() in _SOSL_OPERATORS else f"{escape_sosl(word)}*"
        for word in words
    )
    returning = _returning(object_types, person_accounts)
    return f"FIND {{{terms}}} IN NAME FIELDS RETURNING {returning} LIMIT {_NAME_LIMIT}"


def _returning(object_types: Sequence[str], person_accounts: bool) -> str:
    """The ``RETURNING`` list of a search: the fields a `CrmRecord` needs, Leads unconverted."""
    returning = []
    for object_type in object_types:
        selected = list(_RETURNING_FIELDS[object_type])
        if object_type == "account" and person_accounts:
            selected += _PERSON_ACCOUNT_FIELDS
        condition = _SEARCH_FILTERS.get(object_type)
        where = f" WHERE {condition}" if condition else ""
        returning.append(f"{_SOBJECTS[object_type]}({', '.join(selected)}{where})")
    return ", ".join(returning)


def _match_queries(
    number: PhoneNumber, object_types: Sequence[str], match_field: str, *, person_accounts: bool
) -> dict[str, str]:
    """One SOQL query per object type for the exact +E.164 `number` in `match_field`."""
    queries = {}
    for object_type in object_types:
        selected = list(_RETURNING_FIELDS[object_type])
        if object_type == "account" and person_accounts:
            selected += _PERSON_ACCOUNT_FIELDS
        selected.append(match_field)
        condition = f"{match_field} = {_soql_string(number.e164)}"
        extra = _SEARCH_FILTERS.get(object_type)
        if extra:
            condition += f" AND {extra}"
        queries[object_type] = _select(
            ", ".join(dict.fromkeys(selected)), _SOBJECTS[object_type], condition, "LIMIT 200"
        )
    return queries


def _composite_queries(queries: Mapping[str, str], version: str) -> dict[str, Any]:
    """The ``/composite`` body with one query subrequest per object type of `queries`."""
    return {
        "allOrNone": False,
        "compositeRequest": [
            {
                "method": "GET",
                "url": f"/services/data/v{version}/query/?{urlencode({'q': soql})}",
                "referenceId": object_type,
            }
            for object_type, soql in queries.items()
        ],
    }
