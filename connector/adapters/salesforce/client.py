"""The adapter's access to the Salesforce API: the HTTP session, the login, every request.

simple-salesforce never holds credentials (its own re-login on ``INVALID_SESSION_ID`` recurses
without bound through ``SFType`` calls): `_SalesforceApi` logs in itself (`auth._login`), hands
the token to ``Salesforce(session_id=...)`` and, on ``INVALID_SESSION_ID``, logs in again once and
repeats the request once. Every request goes through a `requests.Session` whose HTTP adapter has
a default ``(connect_timeout, read_timeout)``; every failure comes out as an `AdapterError`
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

from connector.adapters.base import Adapter, PermanentError, RetryableError
from connector.adapters.kit.http import TimeoutHTTPAdapter
from connector.adapters.salesforce.auth import _login
from connector.adapters.salesforce.errors import _translate

#: The package's logger (named as before the package was split into modules).
log = logging.getLogger(__package__)

_T = TypeVar("_T")


class _SalesforceApi(Adapter):
    """Base of the Salesforce adapter's parts: the session, the client and `_call`/`_query`.

    `session` replaces the `requests.Session` the adapter would create; the timeout adapter is
    mounted on it.
    """

    def __init__(
        self,
        name: str,
        options: Mapping[str, Any],
        session: requests.Session | None = None,
    ) -> None:
        super().__init__(name, options)
        self.session = session or requests.Session()
        timeouts = TimeoutHTTPAdapter(
            (float(options["connect_timeout"]), float(options["read_timeout"]))
        )
        self.session.mount("https://", timeouts)
        self.session.mount("http://", timeouts)
        self._instance_url: str = options["instance_url"]
        self._version: str = options["api_version"]
        self._lock = threading.RLock()
        self._sf: Salesforce | None = None

    def _client(self) -> Salesforce:
        with self._lock:
            if self._sf is None:
                self._sf = self._connect(self._login())
            return self._sf

    def _relogin(self, stale: Salesforce) -> Salesforce:
        with self._lock:
            if self._sf is not None and self._sf is not stale:
                return self._sf  # another thread logged in already
            if self.options["auth"]["method"] == "session":
                raise PermanentError(
                    "Salesforce refused the configured session id (INVALID_SESSION_ID); "
                    "configure a new one or an OAuth login."
                )
            self._sf = None
            self._sf = self._connect(self._login())
            return self._sf

    def _connect(self, token: str) -> Salesforce:
        return Salesforce(
            instance_url=self._instance_url,
            session_id=token,
            session=self.session,
            version=self._version,
        )

    def _login(self) -> str:
        """A new access token (or the configured session id)."""
        return _login(
            self.session,
            self.options["auth"],
            instance_url=self._instance_url,
            version=self._version,
            target=self.name,
        )

    def _call(self, what: str, operation: Callable[[Salesforce], _T]) -> _T:
        """Run `operation` against the API; log in again once on ``INVALID_SESSION_ID``.

        Every failure comes out as an `AdapterError` (see `errors._translate`).
        """
        client = self._client()
        try:
            return operation(client)
        except SalesforceExpiredSession:
            log.info("Salesforce target %r: session expired, logging in again", self.name)
        except (SalesforceError, requests.RequestException, ValueError) as exc:
            raise _translate(exc, what, self._sf) from exc
        client = self._relogin(client)
        try:
            return operation(client)
        except SalesforceExpiredSession as exc:
            raise RetryableError(
                f"Salesforce {what}: INVALID_SESSION_ID again right after a new login"
            ) from exc
        except (SalesforceError, requests.RequestException, ValueError) as exc:
            raise _translate(exc, what, self._sf) from exc

    def _query(self, soql: str, what: str) -> list[dict[str, Any]]:
        result = self._call(what, lambda sf: sf.query(soql))
        records = result.get("records") if isinstance(result, Mapping) else None
        if records is not None and not isinstance(records, list):
            raise RetryableError(f"Salesforce {what}: unexpected answer")
        return [dict(row) for row in records or [] if isinstance(row, Mapping)]

    @property
    def api_usage(self) -> tuple[int, int] | None:
        """(used, limit) of the org's daily API requests as last reported, or ``None``."""
        known = self._sf.api_usage.get("api-usage") if self._sf is not None else None
        return (known.used, known.total) if known is not None else None
