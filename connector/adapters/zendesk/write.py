"""The Zendesk writer: one ticket per call, created once, and one end user per new caller.

The ticket (``POST /api/v2/tickets.json``) carries ``external_id`` = the sipgate call id, and
before it is created the call's tickets are listed by that id (``GET /api/v2/tickets.json?
external_id=…``, no search index, so no lag): a retry after a lost answer, a redelivery with an
empty journal and a replay all find the ticket instead of creating a second one (the kit's
`create_once`, journal key ``ticket``). The call's text is the ticket's first comment, private
(``public: false``: an internal note). New callers become end users through
``POST /api/v2/users/create_or_update.json`` with an ``external_id`` derived from the number
(a hash, no digits), under the kit's `CallerClaims` (journal key ``contact``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from typing import Any, Final

from connector.adapters import (
    CallerClaims,
    CrmRecord,
    DeliveryJob,
    HttpClient,
    Journal,
    Memo,
    OutcomeUnknown,
    PhoneNumber,
    RetryableError,
    WriteResult,
    create_once,
    html,
    same_number,
    truncate_to,
)
from connector.adapters.zendesk.options import ZendeskOptions
from connector.adapters.zendesk.search import ZendeskSearcher, user_record

__all__ = ["SUBJECT_LIMIT", "ZendeskWriter", "caller_external_id", "tag_for", "ticket_tags"]

#: Characters of a ticket subject the adapter sends at most.
SUBJECT_LIMIT: Final = 255
_TAG_SPACE: Final = re.compile(r"\s+")
_TAG_DROP: Final = re.compile(r"[^\w\-]")


def tag_for(text: str) -> str:
    """`text` as a Zendesk tag: lowercase, spaces as ``_``, only letters, digits, ``_``, ``-``."""
    tag = _TAG_DROP.sub("", _TAG_SPACE.sub("_", text.strip().casefold()))
    return tag.strip("_-")


def ticket_tags(topics: tuple[str, ...], extra: tuple[str, ...]) -> list[str]:
    """The tags of a ticket: the call's topics, then the target's `extra` tags, each once."""
    tags = (tag_for(t) for t in (*topics, *extra))
    return list(dict.fromkeys(t for t in tags if t))


def caller_external_id(number: PhoneNumber) -> str:
    """The ``external_id`` of the end user made for `number`: a hash, never the digits."""
    return "sipgate-caller-" + hashlib.sha256(number.e164.encode("utf-8")).hexdigest()[:24]


def _zendesk_id(value: str) -> int | str:
    """Zendesk ids are integers; an id that is not (a test's) is sent as it is."""
    return int(value) if value.isdigit() else value


class ZendeskWriter:
    """Writes of the Zendesk adapter: `write` (the ticket) and `create_user`."""

    def __init__(
        self,
        http: HttpClient,
        searcher: ZendeskSearcher,
        options: ZendeskOptions,
        memo: Memo,
        wall_clock: Callable[[], float],
    ) -> None:
        self.http = http
        self.searcher = searcher
        self.options = options
        self.wall_clock = wall_clock
        self.claims = self.claims_in(memo)

    def claims_in(self, memo: Memo) -> CallerClaims:
        """The new-caller claims kept in `memo` (the target's shared memo)."""
        return CallerClaims(memo, "contact", busy_retry_seconds=5.0, clock=self.wall_clock)

    # ------------------------------------------------------------------ the ticket

    def ticket_body(self, job: DeliveryJob) -> dict[str, Any]:
        """The ``POST /api/v2/tickets.json`` body for `job` (nothing is sent)."""
        report = job.report
        subject = str(job.fields.get("subject") or "") or report.headline or "Call"
        comment_html = str(job.fields.get("comment") or "").strip()
        comment: dict[str, Any] = {"public": False}
        if comment_html:
            comment["html_body"] = comment_html
        else:  # Zendesk needs a first comment; a call without content gets its bare facts
            direction = "Incoming" if report.direction == "IN" else "Outgoing"
            seconds = int(report.duration.total_seconds())
            comment["html_body"] = html(
                f"{direction} call, {report.start_time.isoformat()}, {seconds} s."
            )
        ticket: dict[str, Any] = {
            "subject": truncate_to(subject, SUBJECT_LIMIT),
            "comment": comment,
            "external_id": report.call_id,
            "status": self.options.ticket_status,
            "tags": ticket_tags(report.topics, self.options.tags),
        }
        requester = next((m.id for m in job.matches if m.object_type == "contact"), None)
        if requester is not None:
            ticket["requester_id"] = _zendesk_id(requester)
        if self.options.priority is not None:
            ticket["priority"] = self.options.priority
        group = self._mapped(job, self.options.group_map)
        if group is not None:
            ticket["group_id"] = _zendesk_id(group)
        assignee = self.assignee(job)
        if assignee is not None:
            ticket["assignee_id"] = _zendesk_id(assignee)
        return {"ticket": ticket}

    @staticmethod
    def _mapped(job: DeliveryJob, mapping: Mapping[str, str]) -> str | None:
        """The value `mapping` has for the first of the call's sipgate users it names (by full
        user id, e.g. ``1234567w0``, or user id ``w0``, as the policy's ``owners``)."""
        for user in job.report.users:
            for key in (user.full_user_id, user.user_id):
                if key and key in mapping:
                    return mapping[key]
        return None

    def assignee(self, job: DeliveryJob) -> str | None:
        """``assignee_map``'s agent for the call's user (an e-mail is looked up), else the
        owner the delivery policy's ``owners`` resolved."""
        mapped = self._mapped(job, self.options.assignee_map)
        if mapped is None:
            return job.owner_id
        return self.searcher.resolve_agent(mapped) if "@" in mapped else mapped

    def write(self, job: DeliveryJob, journal: Journal) -> WriteResult:
        """The call's ticket, created at most once per call id (looked up by its external id
        first); refs: ``ticket`` and, when one was matched, ``requester``."""
        body = self.ticket_body(job)
        call_id = job.report.call_id

        def create() -> str:
            answer = self.http.request(
                "POST", "api/v2/tickets.json", operation="creating the ticket", json=body
            )
            ticket = answer.get("ticket") if isinstance(answer, Mapping) else None
            if not isinstance(ticket, Mapping) or ticket.get("id") is None:
                raise OutcomeUnknown("Zendesk's answer to creating the ticket names no ticket.")
            return str(ticket["id"])

        ticket_id = create_once(
            journal, "ticket", create, lambda: self.find_ticket(call_id), look_first=True
        )
        refs: dict[str, Any] = {"ticket": ticket_id}
        if "requester_id" in body["ticket"]:
            refs["requester"] = str(body["ticket"]["requester_id"])
        return WriteResult(refs)

    def find_ticket(self, call_id: str) -> str | None:
        """The oldest ticket whose ``external_id`` is `call_id`, or None."""
        answer = self.http.request(
            "GET",
            "api/v2/tickets.json",
            operation="looking up the call's ticket",
            params={"external_id": call_id},
        )
        tickets = answer.get("tickets") if isinstance(answer, Mapping) else None
        if not isinstance(tickets, list):
            raise RetryableError("Zendesk's answer to the ticket lookup has no tickets list.")
        ids = sorted(
            int(t["id"])
            for t in tickets
            if isinstance(t, Mapping)
            and str(t.get("id", "")).isdigit()
            and t.get("external_id") == call_id
        )
        return str(ids[0]) if ids else None

    # ------------------------------------------------------------------ new callers

    def create_user(
        self, number: PhoneNumber, fields: Mapping[str, Any], journal: Journal
    ) -> CrmRecord:
        """The end user for the unknown caller `number`, at most one per number across
        deliveries (`CallerClaims`); ``name`` comes from the mapping's ``new_record``."""
        external_id = caller_external_id(number)
        name = str(fields.get("name") or "").strip() or f"Caller {number.international()}"
        body = {
            "user": {
                "name": truncate_to(name, 255),
                "phone": number.e164,
                "role": "end-user",
                "external_id": external_id,
            }
        }

        def create() -> str:
            answer = self.http.request(
                "POST",
                "api/v2/users/create_or_update.json",
                operation="creating an end user",
                json=body,
            )
            user = answer.get("user") if isinstance(answer, Mapping) else None
            if not isinstance(user, Mapping) or user.get("id") is None:
                raise OutcomeUnknown("Zendesk's answer to creating a user names no user.")
            return str(user_record(user).id)

        def is_live(user_id: str) -> bool:
            user = self.searcher.read_user(user_id)
            return user is not None and any(
                same_number(p, number, number.region or "") for p in user.phones
            )

        user_id = self.claims.record_for(
            number,
            journal,
            create,
            lambda: self.searcher.user_by_external_id(external_id),
            is_live,
        )
        return CrmRecord("contact", user_id, (number.e164,), name=name, extra={"created": True})
