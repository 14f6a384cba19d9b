"""A Standard Webhooks receiver on loopback: verifies every signature, records what it accepted.

Like n8n or an internal service would, it answers ``POST`` on any path: a request whose
``webhook-signature`` the `standardwebhooks` library verifies with the receiver's secret is
accepted (``204``) and recorded; anything else is refused with ``401`` and logged as such.
The signature is checked before any injected fault: every POST is verified and records
``verified``, and a request that fails verification does not use up a `fail_next` rule.
``OPTIONS`` answers ``204`` (what the adapter's check asks), other methods ``405``. Receivers
dedupe on ``webhook-id``: `count_calls` counts distinct ids per call, the way a receiver that
honours the standard would have logged the call. Faults come from `FakeServer` (`fail_next`,
`delay_after_commit`).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError
from werkzeug.wrappers import Request, Response

from tests.fakes.base import FakeServer, Fault, LoggedRequest

__all__ = ["DEFAULT_SECRET", "ReceivedRequest", "WebhookReceiver"]

#: A test-only signing secret (32 bytes of a fixed pattern; never used outside tests).
DEFAULT_SECRET = "whsec_" + base64.b64encode(bytes(range(1, 33))).decode()


@dataclass(frozen=True, kw_only=True)
class ReceivedRequest(LoggedRequest):
    """One request as the receiver saw it: the Standard Webhooks headers, the raw body and
    whether the signature verified (``verified``) with the receiver's secret; ``json`` is the
    verified document (also when a fault refused it), None when it did not verify."""

    webhook_id: str | None = None
    webhook_timestamp: str | None = None
    webhook_signature: str | None = None
    body: bytes = b""
    verified: bool = False
    content_type: str = ""


class WebhookReceiver(FakeServer[ReceivedRequest]):
    """The local receiver of the ``webhook`` target's tests (module docstring)."""

    name = "webhook-receiver"

    def __init__(self, secret: str = DEFAULT_SECRET, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.secret = secret
        self._verifier = Webhook(secret)

    # ---------------------------------------------------------------- inspection

    def accepted(self) -> list[ReceivedRequest]:
        """The verified, accepted requests (duplicates included), oldest first."""
        return [r for r in self.request_log if r.verified and not r.injected]

    def documents(self, call_id: str | None = None) -> list[dict[str, Any]]:
        """The accepted documents, one per ``webhook-id`` (the first seen), of `call_id` or all."""
        seen: dict[str, dict[str, Any]] = {}
        for entry in self.accepted():
            document = entry.json
            wanted = call_id is None or document.get("call", {}).get("id") == call_id
            if entry.webhook_id and entry.webhook_id not in seen and wanted:
                seen[entry.webhook_id] = document
        return list(seen.values())

    def count_calls(self, call_id: str) -> int:
        """How many times a deduplicating receiver would have logged `call_id`."""
        return len(self.documents(call_id))

    # ---------------------------------------------------------------- serving

    def _default_fault_body(self, status: int) -> Any:
        return {"error": f"refused with {status}"}

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        status, entry, fault = self._handle(request)
        self._log_request(entry)
        self._hold(entry.delayed_seconds)
        answer: Any = fault.body if fault is not None else {"status": status}
        if isinstance(answer, str):
            answer = answer.encode()
        body = b"" if status == 204 else answer if isinstance(answer, bytes) else json.dumps(answer)
        response = Response(body, status=status, content_type="application/json")
        response.headers.update(fault.headers if fault is not None else {})
        if request.method == "OPTIONS":
            response.headers["Allow"] = "POST, OPTIONS"
        result: Iterable[bytes] = response(environ, start_response)
        return result

    def _handle(self, request: Request) -> tuple[int, ReceivedRequest, Fault | None]:
        method, path = request.method.upper(), request.path
        data = request.get_data()
        entry = ReceivedRequest(
            method=method,
            path=path,
            query={k: request.args.getlist(k) for k in request.args},
            json=None,
            status=0,
            time=self._clock(),
            kind="api" if method == "POST" else "other",
            webhook_id=request.headers.get("webhook-id"),
            webhook_timestamp=request.headers.get("webhook-timestamp"),
            webhook_signature=request.headers.get("webhook-signature"),
            body=data,
            content_type=request.headers.get("Content-Type", ""),
        )
        if method == "POST":
            # Like a real receiver, and like the CRM fakes' credential check: the signature is
            # checked first, so a request that fails it is refused without using up a fault.
            try:
                document = self._verifier.verify(data, dict(request.headers))
            except (WebhookVerificationError, ValueError):
                return 401, replace(entry, status=401), None
            entry = replace(entry, json=document, verified=True)
        fault = self._take_fault(method, path)
        if fault is not None:
            return fault.status, replace(entry, status=fault.status, injected=True), fault
        if method == "OPTIONS":
            return 204, replace(entry, status=204), None
        if method != "POST":
            return 405, replace(entry, status=405), None
        seconds = self._take_delay(method, path)
        return 204, replace(entry, status=204, delayed_seconds=seconds), None
