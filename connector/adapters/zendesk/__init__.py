"""The ``zendesk`` target: each call as a Zendesk Support ticket with an internal note.

Per delivery the adapter, through plain ``requests`` under the kit's `HttpClient`:

1. finds the requester by phone (``GET /api/v2/users/search.json?query=phone:…``, each
   spelling in turn; the matching policy picks among several users) or, with
   ``on_no_match: create_contact``, creates an end user for an unknown caller
   (``POST /api/v2/users/create_or_update.json``, one per number through the kit's
   `CallerClaims`, found again by its hashed ``external_id``);
2. looks the call's ticket up by ``external_id`` = sipgate call id
   (``GET /api/v2/tickets.json?external_id=…``) and, when there is none, creates it
   (``POST /api/v2/tickets.json``): the subject from the mapping (the headline), the mapping's
   ``comment`` (summary, key points, action items) as a private first comment (``public:
   false``, an internal note), tags from the call's topics (lowercase, spaces as ``_``) plus
   ``tags``, ``status`` = ``ticket_status``, ``priority``, ``group_id`` from ``group_map`` and
   ``assignee_id`` from ``assignee_map`` or the policy's ``owners``.

Auth is HTTP Basic ``{email}/token:{api_token}``. Zendesk's answers map to the pipeline's errors
by `POLICY`: 401/403 permanent (naming the token), 404/409/422 permanent with only Zendesk's
error code and field names, 429 and 5xx retried after ``Retry-After``; a lost answer to a create
is `OutcomeUnknown`, and the retry finds the ticket by its external id. Follow-up tasks do not
exist in Zendesk: the action items are part of the note. ``check`` reads ``/users/me`` (an
agent's token), ``/ticket_fields`` and ``/groups``.
"""

from __future__ import annotations

from connector.adapters.zendesk.adapter import ZendeskAdapter
from connector.adapters.zendesk.check import ZendeskPreflight
from connector.adapters.zendesk.client import POLICY
from connector.adapters.zendesk.options import ZendeskOptions
from connector.adapters.zendesk.search import ZendeskSearcher, phone_queries
from connector.adapters.zendesk.write import ZendeskWriter, caller_external_id, tag_for

__all__ = [
    "POLICY",
    "ZendeskAdapter",
    "ZendeskOptions",
    "ZendeskPreflight",
    "ZendeskSearcher",
    "ZendeskWriter",
    "caller_external_id",
    "phone_queries",
    "tag_for",
]
