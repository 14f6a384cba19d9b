"""The lengths of the org's text fields, read from describe once per adapter instance.

The mapping may write any Task (or Lead) field, and Salesforce refuses a value longer than its
field with ``STRING_TOO_LONG``, a permanent error. Fields whose length the adapter knows
(``Subject``, ``Description``, ``CallDisposition``, the standard Lead fields in
`records.LEAD_FIELD_LIMITS`) and the fields it writes itself are cut without asking; as soon as
the mapping writes any other field, ``sobjects/<Type>/describe`` is read once (one API request
per type and adapter instance) and string values are cut to the field's ``length`` at write time
(`connector.text.truncate_to`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from typing import Any, Final

from connector.adapters.salesforce.client import SalesforceClient

#: describe ``type`` values whose ``length`` limits a text value.
_TEXT_TYPES: Final = frozenset(
    {
        "string",
        "textarea",
        "phone",
        "url",
        "email",
        "picklist",
        "multipicklist",
        "combobox",
        "encryptedstring",
    }
)


def _text_lengths(described: Any) -> dict[str, int]:
    """Lower case field name → length of every text field in a describe answer."""
    fields = described.get("fields") if isinstance(described, Mapping) else None
    lengths: dict[str, int] = {}
    for item in fields if isinstance(fields, list) else []:
        if not isinstance(item, Mapping) or item.get("type") not in _TEXT_TYPES:
            continue
        length = item.get("length")
        if isinstance(length, int) and not isinstance(length, bool) and length > 0:
            lengths[str(item.get("name") or "").lower()] = length
    return lengths


class FieldLengths:
    """`of`: the text field lengths of an sObject type in the org behind `client`, cached."""

    def __init__(self, client: SalesforceClient) -> None:
        self.client = client
        self._lock = threading.Lock()
        self._lengths: dict[str, Mapping[str, int]] = {}

    def of(self, sobject: str, names: Iterable[str], known: Iterable[str]) -> Mapping[str, int]:
        """The text field lengths of `sobject` (lower case names) when one of the field `names`
        the mapping writes is not `known` (names of known length or written by the adapter);
        else nothing, without a request. Read once per type and adapter instance."""
        known_names = {name.lower() for name in known}
        if all(name.lower() in known_names for name in names):
            return {}
        with self._lock:
            if sobject not in self._lengths:
                answer = self.client.call(
                    f"describe {sobject}", lambda sf: sf.restful(f"sobjects/{sobject}/describe")
                )
                self._lengths[sobject] = _text_lengths(answer)
            return self._lengths[sobject]
