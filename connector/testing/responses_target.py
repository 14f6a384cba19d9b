"""A fake HTTP CRM for contract tests, on ``responses``: routes, fault rules, a request log.

`ResponsesTarget` intercepts every request to `base_url` made with ``requests`` (and nothing
else: other URLs fail as unreachable). A test declares the CRM's endpoints as small handlers
(`route`), and the contract suite's fault hooks map onto `fail_next` (answer with an error
status, nothing applied) and `lose_next` (apply, then lose the answer as a read timeout)::

    crm = ResponsesTarget("https://api.example-crm.invalid/v1")
    crm.route("POST", "/activities", lambda request: (201, {"id": "a1"}))
    with crm:
        ...  # the adapter's requests reach the handlers
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
import responses

__all__ = ["FakeRequest", "ResponsesTarget"]


@dataclass(frozen=True)
class FakeRequest:
    """One request the fake CRM received: method, path below `base_url`, query, JSON body."""

    method: str
    path: str
    params: Mapping[str, str]
    body: Any
    headers: Mapping[str, str]
    groups: tuple[str, ...] = ()


Handler = Callable[[FakeRequest], tuple[int, Any]]


@dataclass
class _Fault:
    method: str
    path: re.Pattern[str]
    status: int = 0  # 0: apply, then lose the answer
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)


class ResponsesTarget:
    """A CRM answering at `base_url` through handlers; use it as a context manager."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.mock = responses.RequestsMock(assert_all_requests_are_fired=False)
        self.requests: list[FakeRequest] = []
        self._faults: list[_Fault] = []

    def route(self, method: str, path: str, handler: Handler) -> None:
        """Answer ``method`` requests whose path (below `base_url`) fully matches the regular
        expression `path` with `handler`'s ``(status, JSON body)``; groups go to the handler."""
        pattern = re.compile(re.escape(self.base_url) + path + r"(\?.*)?$")

        def callback(prepared: requests.PreparedRequest) -> Any:
            return self._answer(prepared, pattern, handler)

        self.mock.add_callback(method.upper(), pattern, callback=callback)

    def fail_next(
        self,
        method: str,
        path: str,
        status: int,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next matching request with `status` and `body`; nothing is applied."""
        self._faults.append(_Fault(method.upper(), re.compile(path), status, body, headers or {}))

    def lose_next(self, method: str, path: str) -> None:
        """Apply the next matching request, then lose its answer (a read timeout)."""
        self._faults.append(_Fault(method.upper(), re.compile(path)))

    def __enter__(self) -> ResponsesTarget:
        self.mock.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.mock.stop()
        self.mock.reset()

    def _answer(
        self, prepared: requests.PreparedRequest, pattern: re.Pattern[str], handler: Handler
    ) -> Any:
        url = prepared.url or ""
        split = urlsplit(url)
        raw = prepared.body
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        match = pattern.match(url)
        request = FakeRequest(
            method=str(prepared.method),
            path=split.path[len(urlsplit(self.base_url).path) :],
            params=dict(parse_qsl(split.query)),
            body=json.loads(text) if text else None,
            headers=dict(prepared.headers),
            groups=tuple(g for g in (match.groups()[:-1] if match else ()) if g is not None),
        )
        self.requests.append(request)
        fault = next(
            (f for f in self._faults if f.method == request.method and f.path.search(request.path)),
            None,
        )
        if fault is not None:
            self._faults.remove(fault)
            if fault.status:
                return (fault.status, dict(fault.headers), json.dumps(fault.body))
            handler(request)
            return requests.ReadTimeout("The fake CRM applied the request and lost the answer.")
        status, body = handler(request)
        return (status, {"Content-Type": "application/json"}, json.dumps(body))
