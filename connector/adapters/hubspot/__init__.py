"""The ``hubspot`` target: each call as a HubSpot call engagement on the matched CRM records.

Per delivery the adapter writes, through the official SDK (``hubspot-api-client`` 12):

1. one call (``POST /crm/v3/objects/calls``) with the rendered mapping fields plus the properties
   the adapter owns (time, direction, duration, numbers, status, owner, the sipgate call id) and
   inline associations: call→contact (194) for every matched contact, call→company (182) for
   matched companies and, with ``associate_company``, for the contacts' companies, call→deal (206)
   for the deal ``deal_rule`` picks. With ``unique_call_property`` the call is written by
   ``batch/upsert`` on that property instead, and associated afterwards (upsert inputs carry no
   associations) with idempotent v4 ``PUT`` requests;
2. the action items as tasks in one ``batch/create`` (task→contact 204, task→company 192);
3. a note (note→contact 202) with the text that did not fit (the transcript, as plain text from
   the planner, escaped into HTML paragraphs and cut to 65,536 characters), when there is any;
4. a ticket (ticket→contact 16) when the call came in on one of ``ticket.channels``.

A matched call with action items thus costs three requests: the search, the call, the tasks.

Idempotency: the id of every object is recorded in the delivery's `Journal` right after it was
created, and a retry skips what is recorded. Before a create is sent, ``<step>_pending`` is
recorded with the time; when the outcome stays unknown (timeout, dropped connection, 5xx) the
retry first looks the object up: the call by ``call_id_property`` = sipgate call id, tasks, note
and ticket by their association and creation time. HubSpot's search index lags behind writes
("it may take a few moments"), so when the lookup finds nothing within `PENDING_SETTLE_SECONDS`
of the unknown attempt the delivery is retried later instead of writing a possible duplicate.

Contacts for unknown callers (``create_record``): the durable `Memo` shared by all workers
remembers "this number got contact N" (and "someone is creating it right now"), so two calls
from a new number minutes apart yield one contact although the second search cannot see the
first contact yet. Contacts are created with ``phone`` = +E.164 and nothing marketing-related:
HubSpot documents that the marketing contact status "cannot be modified using HubSpot's API
endpoints" (``hs_marketable_status`` is read-only); contacts created by an app are
non-marketing unless an admin switched on marketing contacts for the app under Settings →
Integrations → Marketing contacts.

Rate limits: every request takes a slot from a `RateLimiter` (``general`` = requests per 10 s,
``search`` = searches per second) shared through ``rate_limit_store``. HubSpot's answers map to
the pipeline's errors: 429 ``TEN_SECONDLY_ROLLING`` and search 429s (which carry no
``policyName``) → `RetryableError` with Retry-After / rate limit headers or 10 s / 1 s; 429
``DAILY`` → `TargetParked` until the next midnight in ``portal_time_zone`` (HubSpot resets daily
limits at midnight in the account's time zone, which the API does not tell us; when the limit is
still used up after that midnight the time zone is wrong and the target is parked an hour at a
time); 401 and 403 and other 4xx → `PermanentError`; 5xx, timeouts, connection errors →
`RetryableError`. urllib3 never retries on its own (``Retry(0, read=False)``) and every request
has ``_request_timeout=(connect_timeout, read_timeout)``.

Messages of errors and log lines carry no phone numbers, e-mail addresses or tokens.
"""

from __future__ import annotations

from connector.adapters.hubspot.adapter import HubSpotAdapter
from connector.adapters.hubspot.check import REQUIRED_SCOPES
from connector.adapters.hubspot.options import CALL_ID_PROPERTY, HubSpotOptions
from connector.adapters.hubspot.pending import PENDING_SETTLE_SECONDS
from connector.adapters.hubspot.records import ASSOCIATION_TYPES

__all__ = [
    "ASSOCIATION_TYPES",
    "CALL_ID_PROPERTY",
    "PENDING_SETTLE_SECONDS",
    "REQUIRED_SCOPES",
    "HubSpotAdapter",
    "HubSpotOptions",
]
