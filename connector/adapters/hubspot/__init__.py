"""The ``hubspot`` target: each call as a HubSpot call engagement on the matched CRM records.

Per delivery the adapter writes, through the official SDK (``hubspot-api-client`` 12):

1. one call (``POST /crm/v3/objects/calls``) with the rendered mapping fields plus the properties
   the adapter owns (time, direction, duration, numbers, status, owner, the sipgate call id) and
   inline associations: call→contact (194) for every matched contact, call→company (182) for
   matched companies and, with ``associate_company``, for the contacts' companies, call→deal (206)
   for the deal ``deal_rule`` picks. With ``unique_call_property`` the call is written by
   ``batch/upsert`` on that property instead, and associated afterwards (upsert inputs carry no
   associations) with idempotent v4 ``PUT`` requests;
2. the action items as tasks in ``batch/create`` requests of at most 100 (task→contact 204,
   task→company 192), each batch recorded on its own;
3. a note (note→contact 202) with the text that did not fit (the transcript, as plain text from
   the planner, escaped into HTML paragraphs and cut to 65,536 characters), when there is any;
4. a ticket (ticket→contact 16) when the call came in on one of ``ticket.channels``.

A matched call with action items thus costs three requests: the search, the call, the tasks.

The adapter is composed of four parts: `HubSpotClient` (the SDK under the kit's rate limiter,
HubSpot's answers as the pipeline's errors), `HubSpotSearcher` (phone searches, contacts by id,
owners through the kit's `OwnerCache`), `HubSpotWriter` (the writes below) and
`HubSpotPreflight` (``check``).

Idempotency: the id of every object is recorded in the delivery's `Journal` right after it was
created, and a retry skips what is recorded. The call is created with the kit's `create_once`
(``call.pending`` holds the time of a create whose outcome is unknown). Before a batch of tasks,
a note or a ticket is sent, ``<step>_pending`` is recorded with the time and the kit's
`fingerprint` of the values sent (subject, body and due date of a task; body and time of a note;
subject and content of a ticket); when the outcome stays unknown (timeout, dropped connection,
408, 5xx, an answer that cannot be read) the retry first looks the object up: the call by
``call_id_property`` = sipgate call id, tasks, note and ticket by their association, creation
time and fingerprint, so a retry that renders other text still finds them and another call's
objects are not taken for ours. HubSpot's search index lags behind writes ("it may take a few
moments"), so when the lookup finds nothing, or not all of a batch, within
`PENDING_SETTLE_SECONDS` of the unknown attempt the delivery is retried later instead of writing
a possible duplicate; after that, what was found is kept and only the rest is created. A create
HubSpot refused or the rate limiter never sent leaves an earlier attempt's ``<step>_pending`` in
place.

Contacts for unknown callers (``create_record``): the kit's `CallerClaims` in the durable `Memo`
shared by all workers remember "this number got contact N" (and "someone is creating it right
now"), so two calls
from a new number minutes apart yield one contact although the second search cannot see the
first contact yet. A remembered contact is used only while one of its numbers is still the
caller's; otherwise a new contact replaces it in the memo. Contacts are created with
``phone`` = +E.164 and nothing marketing-related: HubSpot documents that the marketing contact
status "cannot be modified using HubSpot's API endpoints" (``hs_marketable_status`` is
read-only); contacts created by an app are non-marketing unless an admin switched on marketing
contacts for the app under Settings → Integrations → Marketing contacts.

Rate limits: every request takes a slot from a `RateLimiter` (``general`` = requests per 10 s,
``search`` = searches per second) shared through ``rate_limit_store``. HubSpot's answers map to the
pipeline's errors through the kit's `HttpPolicy` (declared in ``errors.http_policies``): 429
``TEN_SECONDLY_ROLLING`` and search 429s (which carry no ``policyName``) → `RetryableError` with
Retry-After / rate limit headers or 10 s / 1 s; 429 ``DAILY`` → `TargetParked` until the next
midnight in ``portal_time_zone`` (HubSpot resets daily limits at midnight in the account's time
zone, which the API does not tell us; when the limit is still used up within two hours after that
midnight the time zone is wrong and the target is parked an hour at a time); 423 Locked →
`RetryableError` after at least 2 s; 477 Migration in Progress → `RetryableError` after its
Retry-After, or `TargetParked` when that is over 15 minutes; 401 and 403 and other 4xx →
`PermanentError` (the kit's `Rejected`); 408, 5xx, timeouts, connection errors → `RetryableError`.
Every request is counted in the CRM request metrics for the target (the kit's `observe_request`
around the SDK's connection pool). urllib3 never retries on its own (``Retry(0, read=False)``) and
every request has ``_request_timeout=(connect_timeout, read_timeout)``.

Messages of errors and log lines carry no phone numbers, e-mail addresses or tokens: of
HubSpot's error answers only the category, error codes, property names, context keys and
correlation id are passed on. ``check`` asks for ``crm.objects.companies.read`` when the policy
matches companies or ``associate_company`` is on, verifies that every constant the mapping
writes into an enumeration property is one of its options (HubSpot answers ``INVALID_OPTION``
otherwise) and, with ``ticket``, that the pipeline exists and has the stage.
"""

from __future__ import annotations

from connector.adapters.hubspot.adapter import HubSpotAdapter
from connector.adapters.hubspot.check import REQUIRED_SCOPES, HubSpotPreflight
from connector.adapters.hubspot.client import HubSpotClient
from connector.adapters.hubspot.options import CALL_ID_PROPERTY, HubSpotOptions
from connector.adapters.hubspot.pending import PENDING_SETTLE_SECONDS
from connector.adapters.hubspot.records import ASSOCIATION_TYPES
from connector.adapters.hubspot.search import HubSpotSearcher
from connector.adapters.hubspot.write import HubSpotWriter

__all__ = [
    "ASSOCIATION_TYPES",
    "CALL_ID_PROPERTY",
    "PENDING_SETTLE_SECONDS",
    "REQUIRED_SCOPES",
    "HubSpotAdapter",
    "HubSpotClient",
    "HubSpotOptions",
    "HubSpotPreflight",
    "HubSpotSearcher",
    "HubSpotWriter",
]
