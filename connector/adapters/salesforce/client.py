"""The Salesforce client: the HTTP session, the login, every request.

simple-salesforce never holds credentials (its own re-login on ``INVALID_SESSION_ID`` recurses
without bound through ``SFType`` calls): `SalesforceClient` logs in itself (`auth._login`), hands
the token to ``Salesforce(session_id=...)`` and, on ``INVALID_SESSION_ID``, logs in again once and
repeats the request once. Every request goes through a `requests.Session` whose HTTP adapter has
a default ``(connect_timeout, read_timeout)`` and counts it for the target (the kit's
`observe_request`, logins included); every failure comes out as an `AdapterError`
(`errors._translate`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceExpiredSession

from connector.adapters import PermanentError, RetryableError, TimeoutHTTPAdapter
from connector.adapters.salesforce.auth import _login
from connector.adapters.salesforce.errors import _translate
from connector.adapters.salesforce.options import SalesforceOptions

#: The package's logger: every module of the adapter logs under it.
log = logging.getLogger(__package__)

_T = TypeVar("_T")


class SalesforceClient:
    """Requests of the target named `name` to the org: `call` and `query`, logged in on first
    use and again once when the session expired.

    `session` replaces the `requests.Session` the client would create; the timeout adapter is
    mounted on it.
    """

    def __init__(
        self,
        name: str,
        options: SalesforceOptions,
        session: requests.Session | None = None,
    ) -> None:
        self.name = name
        self.options = options
        self.session = session or requests.Session()
        timeouts = TimeoutHTTPAdapter((options.connect_timeout, options.read_timeout), target=name)
        self.session.mount("https://", timeouts)
        self.session.mount("http://", timeouts)
        self.instance_url = options.base_url
        self.version = options.api_version
        self.lock = threading.RLock()
        self.sf: Salesforce | None = None

    def connect(self) -> Salesforce:
        """The logged-in simple-salesforce client (logging in on first use)."""
        with self.lock:
            if self.sf is None:
                self.sf = self._connect(self._login())
            return self.sf

    def _relogin(self, stale: Salesforce) -> Salesforce:
        with self.lock:
            if self.sf is not None and self.sf is not stale:
                return self.sf  # another thread logged in already
            if self.options.auth["method"] == "session":
                raise PermanentError(
                    "Salesforce refused the configured session id (INVALID_SESSION_ID); "
                    "configure a new one or an OAuth login."
                )
            self.sf = None
            self.sf = self._connect(self._login())
            return self.sf

    def _connect(self, token: str) -> Salesforce:
        return Salesforce(
            instance_url=self.instance_url,
            session_id=token,
            session=self.session,
            version=self.version,
        )

    def _login(self) -> str:
        """A new access token (or the configured session id)."""
        return _login(
            self.session,
            self.options.auth,
            instance_url=self.instance_url,
            version=self.version,
            target=self.name,
        )

    def call(self, what: str, operation: Callable[[Salesforce], _T]) -> _T:
        """Run `operation` against the API; log in again once on ``INVALID_SESSION_ID``.

        Every failure comes out as an `AdapterError` (see `errors._translate`).
        """
        client = self.connect()
        try:
            return operation(client)
        except SalesforceExpiredSession:
            log.info("Salesforce target %r: session expired, logging in again", self.name)
        except (SalesforceError, requests.RequestException, ValueError) as exc:
            raise _translate(exc, what, self.sf) from exc
        client = self._relogin(client)
        try:
            return operation(client)
        except SalesforceExpiredSession as exc:
            raise RetryableError(
                f"Salesforce {what}: INVALID_SESSION_ID again right after a new login"
            ) from exc
        except (SalesforceError, requests.RequestException, ValueError) as exc:
            raise _translate(exc, what, self.sf) from exc

    def query(self, soql: str, what: str) -> list[dict[str, Any]]:
        result = self.call(what, lambda sf: sf.query(soql))
        records = result.get("records") if isinstance(result, Mapping) else None
        if records is not None and not isinstance(records, list):
            raise RetryableError(f"Salesforce {what}: unexpected answer")
        return [dict(row) for row in records or [] if isinstance(row, Mapping)]

    def close(self) -> None:
        """Close the HTTP connections."""
        self.session.close()

    @property
    def api_usage(self) -> tuple[int, int] | None:
        """(used, limit) of the org's daily API requests as last reported, or ``None``."""
        known = self.sf.api_usage.get("api-usage") if self.sf is not None else None
        return (known.used, known.total) if known is not None else None
