"""A stateful, local Zendesk Support (API v2) test server for adapter and end-to-end tests.

``ZendeskTestServer`` runs on ``127.0.0.1`` (ephemeral port) in a daemon thread; point a
``zendesk`` target's ``url`` at ``server.url``. What it emulates (developer.zendesk.com):

* Auth: HTTP Basic ``{email}/token:{api_token}``; anything else is 401 ``{"error": "Couldn't
  authenticate you"}``. ``GET /api/v2/users/me.json`` answers the token's user.
* Users: ``GET /api/v2/users/search.json`` with ``query=phone:DIGITS`` (the stored number's
  digits equal DIGITS), ``query=phone:*DIGITS`` (they end with DIGITS: "a leading * for
  different formats"), ``query=email:ADDRESS``, or ``external_id=ID`` (no search syntax);
  ``GET /api/v2/users/{id}.json``; ``POST /api/v2/users.json`` (422 ``DuplicateValue`` for a
  taken external id) and ``POST /api/v2/users/create_or_update.json`` (by external id: 200
  updated, 201 created). New users become searchable by ``query`` only `search_lag_seconds`
  after they were made (Zendesk's search index lags); ``external_id`` lookups do not lag.
* Tickets: ``POST /api/v2/tickets.json`` (201 with ``ticket`` and ``audit``; 422
  ``RecordInvalid`` with ``details`` for a missing comment, an unknown requester, group or
  assignee, an invalid status or priority), ``GET /api/v2/tickets.json`` (all, or
  ``?external_id=``: "show many by external id"). The first comment is stored with its
  ``public`` flag (``comments(ticket_id)``); tags are lowercased and split at spaces, as
  Zendesk stores them.
* ``GET /api/v2/ticket_fields.json`` (the system fields, `deactivate_field` switches one off)
  and ``GET /api/v2/groups.json`` (paged by ``per_page``, ``next_page`` a full URL).
* Rate limits: ``requests_per_minute`` per server; a request over it is 429 with
  ``Retry-After`` (seconds) and every answer carries ``X-Rate-Limit`` and
  ``X-Rate-Limit-Remaining``. `fail_next` injects any answer (e.g. a 429 with
  ``Retry-After``, a 503), and `drop_next_answer` applies a request and then closes the
  connection without answering (the lost answer of a write).

Simplifications: one account, no pagination of searches and ticket lists (100 at most), no
organizations, identities or custom fields.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Request, Response

from tests.fakes.base import FakeServer, Fault, LoggedRequest

__all__ = [
    "AGENT_EMAIL",
    "API_TOKEN",
    "ZendeskRequest",
    "ZendeskTestServer",
]

#: The fictional agent whose API token the server accepts.
AGENT_EMAIL = "api.agent@example.com"
API_TOKEN = "zd-test-6b1f0c2e9a7d4c3b8e5f"

JSONDict = dict[str, Any]
_STATUSES = ("new", "open", "pending", "hold", "solved", "closed")
_PRIORITIES = ("low", "normal", "high", "urgent")
_FIELD_TYPES = ("subject", "description", "status", "tickettype", "priority", "group", "assignee")
_MAX_PAGE = 100


@dataclass(frozen=True, kw_only=True)
class ZendeskRequest(LoggedRequest):
    """One request as the server saw it, with the Basic auth user name it carried."""

    auth_user: str | None = None


@dataclass
class _Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class _ApiError(Exception):
    def __init__(self, status: int, body: JSONDict) -> None:
        super().__init__(str(body.get("error")))
        self.status = status
        self.body = body


def _invalid(field_name: str, code: str, description: str) -> _ApiError:
    return _ApiError(
        422,
        {
            "error": "RecordInvalid",
            "description": "Record validation errors",
            "details": {field_name: [{"description": description, "error": code}]},
        },
    )


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _digits(value: Any) -> str:
    return re.sub(r"\D", "", str(value or ""))


class ZendeskTestServer(FakeServer[ZendeskRequest]):
    """A Zendesk account on loopback (see the module docstring)."""

    name = "zendesk-test-server"

    def __init__(
        self,
        *,
        email: str = AGENT_EMAIL,
        api_token: str = API_TOKEN,
        requests_per_minute: int = 100_000,
        retry_after_seconds: int = 1,
        search_lag_seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """An empty account whose agent `email` has `api_token`; `clock` drives the rate
        limit window and the search lag."""
        super().__init__(clock=clock)
        self.email = email
        self.api_token = api_token
        self.requests_per_minute = requests_per_minute
        self.retry_after_seconds = retry_after_seconds
        self.search_lag_seconds = search_lag_seconds
        self._window: list[float] = []
        self._drops: list[Fault] = []
        self._users: dict[int, JSONDict] = {}
        self._searchable_at: dict[int, float] = {}
        self._tickets: dict[int, JSONDict] = {}
        self._comments: dict[int, list[JSONDict]] = {}
        self._groups: dict[int, JSONDict] = {}
        self._inactive_fields: set[str] = set()
        self._next_user = 9_100_000_001
        self._next_ticket = 1
        self._next_group = 5_100_000_001
        self._me = self._users[int(self.add_user("API Agent", email=email, role="admin"))]

    # ---------------------------------------------------------------- seeding and inspection

    def add_user(
        self,
        name: str,
        *,
        phone: str | None = None,
        email: str | None = None,
        role: str = "end-user",
        external_id: str | None = None,
        updated_at: float | None = None,
    ) -> str:
        """A user (searchable at once); answers its id."""
        with self._lock:
            return str(
                self._store_user(
                    {
                        "name": name,
                        "phone": phone,
                        "email": email,
                        "role": role,
                        "external_id": external_id,
                    },
                    updated_at=updated_at,
                    lag=0.0,
                )["id"]
            )

    def add_group(self, name: str, *, deleted: bool = False) -> str:
        """A group; answers its id."""
        with self._lock:
            group_id = self._next_group
            self._next_group += 1
            self._groups[group_id] = {"id": group_id, "name": name, "deleted": deleted}
            return str(group_id)

    def deactivate_field(self, field_type: str) -> None:
        """Switch the system ticket field `field_type` (e.g. ``priority``) off."""
        with self._lock:
            self._inactive_fields.add(field_type)

    def users(self) -> list[JSONDict]:
        """Every user, oldest first (copies)."""
        with self._lock:
            return [dict(u) for u in self._users.values()]

    def tickets(self) -> list[JSONDict]:
        """Every ticket, oldest first (copies)."""
        with self._lock:
            return [dict(t) for t in self._tickets.values()]

    def comments(self, ticket_id: str | int) -> list[JSONDict]:
        """The comments of a ticket (copies)."""
        with self._lock:
            return [dict(c) for c in self._comments.get(int(ticket_id), [])]

    def drop_next_answer(
        self, path_regex: str, count: int | None = 1, *, method: str | None = None
    ) -> None:
        """Apply the next `count` matching requests, then close the connection unanswered."""
        with self._lock:
            self._drops.append(Fault(re.compile(path_regex), method, count))

    def clear_faults(self) -> None:
        """Forget pending injected answers, holds and drops."""
        with self._lock:
            super().clear_faults()
            self._drops.clear()

    def _default_fault_body(self, status: int) -> Any:
        if status == 429:
            return "Too Many Requests"
        if status == 401:
            return {"error": "Couldn't authenticate you"}
        if status == 422:
            return {"error": "RecordInvalid", "description": "Record validation errors"}
        return {"error": "ServerError", "description": f"HTTP {status}"}

    # ---------------------------------------------------------------- WSGI

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        reply, entry, drop = self._handle(request)
        self._log_request(entry)
        if drop:
            connection = environ.get("werkzeug.socket")
            if isinstance(connection, socket.socket):
                connection.shutdown(socket.SHUT_RDWR)
            start_response("500 Dropped", [])  # writing it fails quietly: the socket is shut
            return [b""]
        self._hold(entry.delayed_seconds)
        if reply.body is None or isinstance(reply.body, bytes | str):
            data, content_type = reply.body or b"", "text/plain; charset=utf-8"
        else:
            data, content_type = json.dumps(reply.body), "application/json; charset=utf-8"
        response = Response(data, status=reply.status, content_type=content_type)
        response.headers.update(reply.headers)
        answered: Iterable[bytes] = response(environ, start_response)
        return answered

    def _auth_user(self, request: Request) -> str | None:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(value.strip()).decode("utf-8")
        except (ValueError, UnicodeDecodeError):
            return None
        user, _, secret = decoded.partition(":")
        if user == f"{self.email}/token" and secret == self.api_token:
            return user
        return None

    def _handle(self, request: Request) -> tuple[_Reply, ZendeskRequest, bool]:
        method, path = request.method.upper(), request.path
        raw = request.get_data()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        entry = ZendeskRequest(
            method=method,
            path=path,
            query={key: request.args.getlist(key) for key in request.args},
            json=body,
            status=0,
            time=time.time(),
            kind="api",
        )
        with self._lock:
            user = self._auth_user(request)
            entry = replace(entry, auth_user=user)
            if user is None:
                reply = _Reply(401, {"error": "Couldn't authenticate you"})
                return reply, replace(entry, status=401), False
            fault = self._take_fault(method, path)
            if fault is not None:
                reply = _Reply(fault.status, fault.body, dict(fault.headers))
                return reply, replace(entry, status=fault.status, injected=True), False
            limited = self._admit()
            if limited is not None:
                return limited, replace(entry, status=429), False
            try:
                reply = self._dispatch(method, path, request, body)
            except _ApiError as error:
                reply = _Reply(error.status, error.body)
            except Exception as error:  # a bug in this server: answer loudly, don't hang
                reply = _Reply(500, {"error": "TestServerBug", "description": repr(error)})
            reply.headers.update(self._rate_headers())
            drop = next((d for d in self._drops if d.take(method, path)), None) is not None
            seconds = self._take_delay(method, path)
            return reply, replace(entry, status=reply.status, delayed_seconds=seconds), drop

    def _admit(self) -> _Reply | None:
        now = self._clock()
        self._window = [t for t in self._window if t > now - 60.0]
        if len(self._window) >= self.requests_per_minute:
            headers = {"Retry-After": str(self.retry_after_seconds), **self._rate_headers()}
            return _Reply(429, "Too Many Requests", headers)
        self._window.append(now)
        return None

    def _rate_headers(self) -> dict[str, str]:
        left = max(0, self.requests_per_minute - len(self._window))
        return {"X-Rate-Limit": str(self.requests_per_minute), "X-Rate-Limit-Remaining": str(left)}

    # ---------------------------------------------------------------- endpoints

    def _dispatch(self, method: str, path: str, request: Request, body: Any) -> _Reply:
        routes: list[tuple[str, str, Callable[..., _Reply]]] = [
            ("GET", r"/api/v2/users/me\.json", lambda: _Reply(200, {"user": self._me})),
            ("GET", r"/api/v2/users/search\.json", lambda: self._search_users(request)),
            ("POST", r"/api/v2/users/create_or_update\.json", lambda: self._upsert_user(body)),
            ("GET", r"/api/v2/users/(\d+)\.json", self._show_user),
            ("POST", r"/api/v2/users\.json", lambda: self._create_user(body)),
            ("GET", r"/api/v2/tickets\.json", lambda: self._list_tickets(request)),
            ("POST", r"/api/v2/tickets\.json", lambda: self._create_ticket(body)),
            ("GET", r"/api/v2/ticket_fields\.json", self._ticket_fields),
            ("GET", r"/api/v2/groups\.json", lambda: self._list_groups(request)),
        ]
        for verb, pattern, handler in routes:
            matched = re.fullmatch(pattern, path)
            if matched and verb == method:
                return handler(*matched.groups())
        raise _ApiError(404, {"error": "InvalidEndpoint", "description": "Not found"})

    def _store_user(
        self, fields: Mapping[str, Any], *, updated_at: float | None = None, lag: float
    ) -> JSONDict:
        user_id = self._next_user
        self._next_user += 1
        stamp = _iso(time.time() if updated_at is None else updated_at)
        user: JSONDict = {
            "id": user_id,
            "url": f"{self._base()}/api/v2/users/{user_id}.json",
            "name": fields.get("name"),
            "email": fields.get("email"),
            "phone": fields.get("phone"),
            "role": fields.get("role") or "end-user",
            "external_id": fields.get("external_id"),
            "organization_id": None,
            "active": True,
            "created_at": stamp,
            "updated_at": stamp,
        }
        self._users[user_id] = user
        self._searchable_at[user_id] = self._clock() + lag
        return user

    def _base(self) -> str:
        return self.url if self.running else "http://127.0.0.1"

    def _validated_user(self, body: Any) -> JSONDict:
        user = body.get("user") if isinstance(body, Mapping) else None
        if not isinstance(user, Mapping):
            raise _invalid("user", "InvalidValue", "user: is missing")
        if not str(user.get("name") or "").strip():
            raise _invalid("name", "BlankValue", "Name: cannot be blank")
        if user.get("role", "end-user") not in ("end-user", "agent", "admin"):
            raise _invalid("role", "InvalidValue", f"Role: {user.get('role')} is invalid")
        return dict(user)

    def _by_external_id(self, external_id: Any) -> JSONDict | None:
        if external_id in (None, ""):
            return None
        return next((u for u in self._users.values() if u["external_id"] == external_id), None)

    def _create_user(self, body: Any) -> _Reply:
        user = self._validated_user(body)
        if self._by_external_id(user.get("external_id")) is not None:
            raise _invalid("external_id", "DuplicateValue", "External has already been taken")
        return _Reply(201, {"user": self._store_user(user, lag=self.search_lag_seconds)})

    def _upsert_user(self, body: Any) -> _Reply:
        user = self._validated_user(body)
        existing = self._by_external_id(user.get("external_id"))
        if existing is None:
            return _Reply(201, {"user": self._store_user(user, lag=self.search_lag_seconds)})
        existing.update({k: v for k, v in user.items() if k in ("name", "phone", "role")})
        existing["updated_at"] = _iso(time.time())
        return _Reply(200, {"user": existing})

    def _show_user(self, user_id: str) -> _Reply:
        user = self._users.get(int(user_id))
        if user is None:
            raise _ApiError(404, {"error": "RecordNotFound", "description": "Not found"})
        return _Reply(200, {"user": user})

    def _search_users(self, request: Request) -> _Reply:
        if "external_id" in request.args:
            found = self._by_external_id(request.args["external_id"])
            users = [found] if found is not None else []
            return _Reply(200, {"users": users, "next_page": None, "count": len(users)})
        query = request.args.get("query", "").strip()
        key, _, value = query.partition(":")
        if not value:
            raise _ApiError(400, {"error": "InvalidQuery", "description": "query: is invalid"})
        now = self._clock()
        users = [
            u
            for u in self._users.values()
            if self._searchable_at.get(u["id"], 0.0) <= now and self._matches(u, key, value)
        ]
        per_page = min(int(request.args.get("per_page", _MAX_PAGE)), _MAX_PAGE)
        return _Reply(200, {"users": users[:per_page], "next_page": None, "count": len(users)})

    @staticmethod
    def _matches(user: Mapping[str, Any], key: str, value: str) -> bool:
        if key == "phone":
            stored = _digits(user.get("phone"))
            if value.startswith("*"):
                return bool(stored) and stored.endswith(_digits(value))
            return bool(stored) and stored == _digits(value) and value.isdigit()
        if key == "email":
            return str(user.get("email") or "").casefold() == value.casefold()
        raise _ApiError(400, {"error": "InvalidQuery", "description": f"{key}: not supported"})

    def _list_tickets(self, request: Request) -> _Reply:
        tickets = list(self._tickets.values())
        if "external_id" in request.args:
            tickets = [t for t in tickets if t["external_id"] == request.args["external_id"]]
        return _Reply(200, {"tickets": tickets[:_MAX_PAGE], "next_page": None})

    def _create_ticket(self, body: Any) -> _Reply:
        ticket = body.get("ticket") if isinstance(body, Mapping) else None
        if not isinstance(ticket, Mapping):
            raise _invalid("ticket", "InvalidValue", "ticket: is missing")
        comment = ticket.get("comment")
        text = ""
        if isinstance(comment, Mapping):
            text = str(comment.get("html_body") or comment.get("body") or "")
        if not text.strip():
            raise _invalid("description", "BlankValue", "Description: cannot be blank")
        status = ticket.get("status", "new")
        if status not in _STATUSES:
            raise _invalid("status", "InvalidValue", f"Status: {status} is not valid")
        priority = ticket.get("priority")
        if priority is not None and priority not in _PRIORITIES:
            raise _invalid("priority", "InvalidValue", f"Priority: {priority} is not valid")
        requester = ticket.get("requester_id", self._me["id"])
        if requester not in self._users:
            raise _invalid("requester", "InvalidValue", f"Requester: {requester} is invalid")
        group = ticket.get("group_id")
        if group is not None and (group not in self._groups or self._groups[group]["deleted"]):
            raise _invalid("group", "InvalidValue", f"Group: {group} is invalid")
        assignee = ticket.get("assignee_id")
        if assignee is not None and self._users.get(assignee, {}).get("role") not in (
            "agent",
            "admin",
        ):
            raise _invalid("assignee", "InvalidValue", f"Assignee: {assignee} is not an agent")
        tags = ticket.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise _invalid("tags", "InvalidValue", "Tags: must be a list of strings")
        ticket_id = self._next_ticket
        self._next_ticket += 1
        stamp = _iso(time.time())
        stored: JSONDict = {
            "id": ticket_id,
            "url": f"{self._base()}/api/v2/tickets/{ticket_id}.json",
            "external_id": ticket.get("external_id"),
            "subject": ticket.get("subject"),
            "description": re.sub(r"<[^>]+>", "", text),
            "status": status,
            "priority": priority,
            "requester_id": requester,
            "submitter_id": self._me["id"],
            "assignee_id": assignee,
            "group_id": group,
            "tags": list(dict.fromkeys(p for t in tags for p in t.casefold().split())),
            "created_at": stamp,
            "updated_at": stamp,
        }
        self._tickets[ticket_id] = stored
        public = comment.get("public", True) if isinstance(comment, Mapping) else True
        self._comments[ticket_id] = [
            {
                "id": ticket_id * 1000 + 1,
                "body": stored["description"],
                "html_body": text,
                "public": public,
                "author_id": self._me["id"],
            }
        ]
        return _Reply(201, {"ticket": stored, "audit": {"ticket_id": ticket_id, "events": []}})

    def _ticket_fields(self) -> _Reply:
        fields = [
            {
                "id": 360_000_000 + number,
                "type": kind,
                "title": kind.capitalize(),
                "active": kind not in self._inactive_fields,
            }
            for number, kind in enumerate(_FIELD_TYPES, start=1)
        ]
        return _Reply(200, {"ticket_fields": fields, "next_page": None, "count": len(fields)})

    def _list_groups(self, request: Request) -> _Reply:
        per_page = min(int(request.args.get("per_page", _MAX_PAGE)), _MAX_PAGE)
        page = int(request.args.get("page", 1))
        groups = list(self._groups.values())
        shown = groups[(page - 1) * per_page : page * per_page]
        following = (
            f"{self._base()}/api/v2/groups.json?per_page={per_page}&page={page + 1}"
            if page * per_page < len(groups)
            else None
        )
        return _Reply(200, {"groups": shown, "next_page": following, "count": len(groups)})
