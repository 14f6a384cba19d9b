"""The ``salesforce`` target: each call as a closed call Task on the matched Salesforce record.

Per delivery the adapter writes, through ``simple-salesforce`` 1.12 on the REST API:

1. one ``POST composite/sobjects`` (sObject Collections, ``allOrNone: false``, one API call) with
   the call Task (``TaskSubtype``/``Type`` ``Call``, ``CallType``, ``CallDurationInSeconds``,
   ``CallObject`` = sipgate call id, ``ActivityDate`` = date of the call in the policy's
   ``defaults.timezone``, the org's closed ``Status``, ``WhoId``/``WhatId``/``OwnerId`` and the
   rendered mapping fields), one open Task per action item (the org's default open ``Status``,
   ``Priority`` mapped from low/normal/high), an Enhanced Note (``ContentNote``) with the text
   that did not fit (``job.overflow``) and a ``Case`` when the call came in on one of
   ``case.channels``; the note's title and the case's subject end in ``(sipgate call <id>)``;
2. only when a note was created: a second ``POST composite/sobjects`` with the
   ``ContentDocumentLink`` that attaches the note to the WhoId (the link needs the note's id,
   and the project's test server has no ``/composite`` with reference ids).

Request budget: a matched call with action items and no overflow costs two API requests, the
SOSL search (`search_by_phone`) and the composite write. The org's ``TaskStatus`` and
``TaskPriority`` values are read once per adapter instance (two queries on its first write).
``what_rule: open_opportunity`` costs one more query per call (the most recently modified open
Opportunity of the account); overflow costs the link request. With ``external_id_field`` the
Tasks are upserted instead (``PATCH composite/sobjects/Task/<field>``, one API call; notes and
cases then need a separate ``POST``). When the mapping writes Task fields other than those the
adapter knows the length of, the Task's describe is read once per adapter instance (one request)
and text values are cut to each field's length instead of failing with ``STRING_TOO_LONG``.

WhoId/WhatId: the first contact, lead or person account (its person contact) is the WhoId; the
WhatId by ``what_rule`` is the contact's account, its most recently modified open Opportunity, or
none; a lead's Task has no WhatId, and a call matched to an account only is logged on the account
(also with ``what_rule: none``). The first attempt records all of it in the journal (``links``)
and every retry reuses it.

Search: `search_by_phone` sends ONE SOSL request over every spelling of the number
(`PhoneNumber.variants`, each quoted and escaped with `escape_sosl`), returning every standard
phone field (Contact: Phone, MobilePhone, HomePhone, OtherPhone, AssistantPhone, Fax; Lead:
Phone, MobilePhone, Fax; Account: Phone, Fax and the person account fields), all of which the
matching policy's re-check sees. ``IN PHONE FIELDS`` also searches custom phone fields, whose
values a search cannot return: a record whose number is only in a custom phone field is rejected
by the re-check (and with ``on_no_match: create_lead`` the caller gets a Lead); use
``match_field`` for such numbers. Salesforce's search index lags behind writes (15 minutes and
more); with ``match_field`` (an indexed custom field holding +E.164, e.g. ``Phone_E164__c``) an
exact SOQL match is used instead: one ``query`` request for one object type, one ``/composite``
request with one query subrequest per type for several (one API call; ``/composite`` takes up to
5 queries but no SOSL). Searched are the types the policy's ``matching.objects`` names that the
``search_objects`` option allows (``person_account`` allows accounts); `check` names the others.

Name search (the console's review queue): `search_by_name` sends one SOSL
``FIND {word* AND ...} IN NAME FIELDS`` over the same object types, built by `build_name_sosl`
from the typed name's words only (`name_words`), each escaped, operator words quoted.

Idempotency: every created id is recorded in the delivery's `Journal` at once, and a retry
creates only what is not recorded. Before a composite create is sent, the lookup marker of each
of its records (``pending_markers``) and ``task_pending`` are recorded; when its outcome stays
unknown (timeout, dropped connection, 5xx) the retry first looks up what the lost answer would
have told, by those markers, which derive from the sipgate call id alone: Tasks by
``CallObject`` (the call Task carries the call id, follow-up N carries ``<call id>#N``,
``CallObject`` is filterable), the note by the ``(sipgate call <id>)`` that ends its title, the
case by the same ending of its ``Subject`` (filterable). A Task owned by another user (mapped
owners) may be invisible to the integration user and then cannot be found: `check` recommends
"View All Data" for it, or ``external_id_field`` (upserts need no lookup).

Leads for unknown callers (`create_record`): ``Phone`` = international format, ``LastName``/
``Company`` from ``lead_defaults``, ``match_field`` = +E.164 when Leads are searched with it.
The kit's `CallerClaims` in the shared `Memo` remember "this number (hashed E.164) got lead X"
for a day (reused after one query showed it exists unconverted) and "a delivery is creating it"
(a claim taken over with compare-and-set when its worker died), so a repeat caller gets the same
lead while SOSL cannot see it yet; a retry whose create had an unknown outcome looks the lead up
with SOQL first, by ``match_field`` or else the exact ``Phone`` text it sent (see `leads` for
the limits).

Authentication: simple-salesforce never holds credentials (its own re-login on
``INVALID_SESSION_ID`` recurses without bound through ``SFType`` calls). The adapter logs in itself
(OAuth client credentials or JWT bearer with ``requests``/PyJWT, or simple-salesforce's
``SalesforceLogin`` for the retiring SOAP username/password login), hands the token to
``Salesforce(session_id=...)``, and on ``INVALID_SESSION_ID`` logs in again once and repeats the
request once; a second refusal is a `RetryableError`, a refused login (``invalid_client``,
``invalid_grant``, …) a `PermanentError`.

Faults: every request goes through a `requests.Session` whose HTTP adapter has a default
``(connect_timeout, read_timeout)``. ``REQUEST_LIMIT_EXCEEDED`` for the daily request allocation
parks the target for `REQUEST_LIMIT_PARK` (one hour): Salesforce counts requests over a rolling
24-hour window ("calls are blocked until usage for the preceding 24 hours drops below the
limit"), so there is no reset time to wait for, and capacity comes back as old requests age
out. ``REQUEST_LIMIT_EXCEEDED`` for concurrent long-running requests is a short `RetryableError`.
``UNABLE_TO_LOCK_ROW``, 5xx, timeouts and connection errors are retryable (a timeout, a
connection lost after connecting, 408 and 5xx are the kit's `OutcomeUnknown`: a lost Lead create
is looked up before it is sent again); validation, permission
and other 4xx errors are permanent and carry Salesforce's error code and message, with values
Salesforce echoes (field contents, also in a trigger's nested ``first error:``, and query text:
any message with ``ERROR at Row:``), phone numbers and e-mail addresses removed.

`SalesforceAdapter.from_config` passes what the adapter needs of the target's policy
(`PolicyNeeds`): ``matching.objects``, ``on_no_match`` (`check` asks for Lead create rights only
for ``create_lead``), ``defaults.timezone``, the owners and the mapped Task (with the constants
the mapping writes, checked against restricted picklists) and Lead fields.

Modules (names with a leading underscore are internal to the package):

- `options`: the typed options (`SalesforceOptions`) and what the policy asks (`PolicyNeeds`);
- `soql`: SOQL/SOSL text (`escape_sosl`, `escape_soql`, `build_sosl`, `build_name_sosl`, the
  ``match_field`` queries);
- `auth`: the login flows (client credentials, JWT bearer, session id, SOAP password);
- `errors`: Salesforce's errors as `RetryableError`/`TargetParked`/`PermanentError`, scrubbed;
- `client`: `SalesforceClient`, the HTTP session with its timeouts, the login and re-login,
  every API request;
- `lengths`: the org's text field lengths (describe, once per type), for the mapping's fields;
- `records`: the records and collection requests of one write, without I/O;
- `taskvalues`: the org's Task Status and Priority values;
- `search`, `leads`, `write`, `check`: the adapter's parts `SalesforceSearcher` (phone search
  and owners), `SalesforceLeads` (leads for unknown callers), `SalesforceWriter` (writing with
  idempotent retries) and `SalesforcePreflight` (the check);
- `adapter`: `SalesforceAdapter`, which composes the parts.
"""

from __future__ import annotations

import logging

from connector.adapters.salesforce.adapter import SalesforceAdapter
from connector.adapters.salesforce.auth import JWT_BEARER_GRANT, JWT_LIFETIME_SECONDS
from connector.adapters.salesforce.check import TASK_FIELDS, SalesforcePreflight
from connector.adapters.salesforce.client import SalesforceClient
from connector.adapters.salesforce.errors import CONCURRENT_LIMIT_RETRY_SECONDS, REQUEST_LIMIT_PARK
from connector.adapters.salesforce.leads import LEAD_MEMO_SECONDS, SalesforceLeads
from connector.adapters.salesforce.options import (
    SEARCH_OBJECTS,
    WHAT_RULES,
    PolicyNeeds,
    SalesforceOptions,
)
from connector.adapters.salesforce.records import CALL_DATE_ZONE, DESCRIPTION_LIMIT, SUBJECT_LIMIT
from connector.adapters.salesforce.search import SalesforceSearcher
from connector.adapters.salesforce.soql import build_name_sosl, build_sosl, escape_soql, escape_sosl
from connector.adapters.salesforce.write import SalesforceWriter

#: The package's logger: every module logs through ``logging.getLogger(__package__)``, this one.
log = logging.getLogger(__name__)

__all__ = [
    "CALL_DATE_ZONE",
    "CONCURRENT_LIMIT_RETRY_SECONDS",
    "DESCRIPTION_LIMIT",
    "JWT_BEARER_GRANT",
    "JWT_LIFETIME_SECONDS",
    "LEAD_MEMO_SECONDS",
    "REQUEST_LIMIT_PARK",
    "SEARCH_OBJECTS",
    "SUBJECT_LIMIT",
    "TASK_FIELDS",
    "WHAT_RULES",
    "PolicyNeeds",
    "SalesforceAdapter",
    "SalesforceClient",
    "SalesforceLeads",
    "SalesforceOptions",
    "SalesforcePreflight",
    "SalesforceSearcher",
    "SalesforceWriter",
    "build_name_sosl",
    "build_sosl",
    "escape_soql",
    "escape_sosl",
]
