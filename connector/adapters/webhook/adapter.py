"""`WebhookAdapter`: POST each call, signed per Standard Webhooks, to the target's ``url``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final

import requests
from standardwebhooks import Webhook

from connector.adapters import (
    Adapter,
    CheckResult,
    DeliveryJob,
    HttpClient,
    HttpPolicy,
    Journal,
    WriteResult,
)
from connector.adapters.webhook.options import SECRET_PREFIX, WebhookOptions, secret_key
from connector.adapters.webhook.payload import call_document, delivery_id, encode

__all__ = ["WebhookAdapter"]

USER_AGENT: Final = "sipgate-crm-connector (webhook target)"
#: Answers to the check's OPTIONS request that say the url names nothing.
_NOT_THERE: Final = frozenset({404, 410})


def _policy(options: WebhookOptions) -> HttpPolicy:
    # No `detail`: a receiver's error body may repeat the call, so no part of it is kept.
    return HttpPolicy(
        service="Webhook receiver",
        credential="secret",
        timeout=(options.connect_timeout, options.read_timeout),
    )


class WebhookAdapter(Adapter):
    """Forwards calls to a receiver (n8n, Zapier, Make, an internal service), signed.

    Every write is one POST of the v1 document (`connector.adapters.webhook.payload`) with the
    Standard Webhooks headers ``webhook-id`` (the delivery's id: the same on every attempt and
    replay, for the receiver to dedupe on), ``webhook-timestamp`` (the send time) and
    ``webhook-signature`` (HMAC-SHA256 with the ``secret``). Answers go through the kit's
    `HttpPolicy`: 2xx is done whatever the body; 408, 425, 429 (with ``Retry-After``), 5xx,
    timeouts and lost connections are retried; any other 4xx is permanent, 401/403 naming the
    secret. The target cannot search, create records or resolve owners: it has no matching step.
    """

    type_name = "webhook"
    options_type = WebhookOptions
    options: WebhookOptions

    def __init__(
        self,
        name: str,
        options: WebhookOptions,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(name, options)
        self._signer = Webhook(secret_key(options.secret))
        self.http = HttpClient(
            options.url,
            _policy(options),
            headers={"User-Agent": USER_AGENT},
            secrets=(options.secret, options.secret.removeprefix(SECRET_PREFIX)),
            clock=clock,
            target=name,
        )

    def _document(self, job: DeliveryJob) -> dict[str, Any]:
        return call_document(job, self.name, include_transcript=self.options.include_transcript)

    def signed_request(self, job: DeliveryJob) -> tuple[str, bytes, dict[str, str]]:
        """The delivery id, the body and the headers of the POST for `job`, signed now."""
        msg_id = delivery_id(self.name, job.report.call_id)
        body = encode(self._document(job))
        now = self.http.clock().astimezone(UTC)  # the library signs the time as if it were UTC
        headers = {
            "Content-Type": "application/json",
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self._signer.sign(msg_id, now, body.decode("utf-8")),
        }
        return msg_id, body, headers

    def write(self, job: DeliveryJob, journal: Journal) -> WriteResult:
        """POST the call once; a repeat sends the same ``webhook-id`` and body (no journal is
        needed: the receiver dedupes, as Standard Webhooks intends)."""
        msg_id, body, headers = self.signed_request(job)
        self.http.request(
            "POST",
            self.options.url,
            operation="delivery",
            content=body,
            headers=headers,
            json_answer=False,
        )
        return WriteResult(refs={"webhook_id": msg_id})

    def describe_write(self, job: DeliveryJob) -> list[dict[str, Any]]:
        """The POST `write` would send: its ``webhook-id`` and the document."""
        document = self._document(job)
        return [
            {
                "op": "POST",
                "target": self.name,
                "webhook_id": document["delivery"]["id"],
                "document": document,
            }
        ]

    def check(self) -> list[CheckResult]:
        """The secret is a usable key (checked when the options load) and the receiver answers
        an ``OPTIONS`` request to the url with anything but 404, 410 or a 5xx."""
        results = [CheckResult(True, "Signing secret is a valid Standard Webhooks key.")]
        try:
            response = self.http.session.options(self.options.url)
        except requests.RequestException as exc:
            reason = f"Cannot reach the receiver: {type(exc).__name__}"
            return [*results, CheckResult(False, reason)]
        status = response.status_code
        if status in _NOT_THERE or status >= 500:
            hint = "is the url right?" if status in _NOT_THERE else "the receiver has a problem."
            return [*results, CheckResult(False, f"The receiver answered HTTP {status}: {hint}")]
        return [*results, CheckResult(True, f"The receiver answers (HTTP {status} to OPTIONS).")]

    def close(self) -> None:
        """Close the HTTP session."""
        self.http.close()
