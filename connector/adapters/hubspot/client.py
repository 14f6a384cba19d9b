"""The HubSpot client: the official SDK (``hubspot-api-client``) under the kit's rate limiter.

The SDK's API objects are built once per adapter and share one ``ApiClient`` (one connection
pool) per SDK package; urllib3 never retries on its own; every request takes a slot from the
rate limiter and carries ``_request_timeout=(connect_timeout, read_timeout)``. What the SDK
raises (any SDK package's ``ApiException``, urllib3 and socket errors) becomes the pipeline's
errors here and in `errors`. A 2xx answer the SDK cannot decode (a proxy's HTML page, a status
the SDK does not expect, a body without the fields every answer has) may still have been
applied: it is `OutcomeUnknown`, so a create is looked up before it is sent again.
"""

from __future__ import annotations

import hashlib
import threading
import traceback
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from zoneinfo import ZoneInfo

from hubspot import HubSpot
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    MaxRetryError,
)
from urllib3.util.retry import Retry

from connector.adapters import (
    AdapterError,
    Budget,
    Memo,
    MemoryMemo,
    OutcomeUnknown,
    RateLimiter,
    RetryableError,
    observe_request,
    open_store,
)
from connector.adapters.hubspot.errors import _body_json, _daily_limit_parked, http_policies
from connector.adapters.hubspot.options import HubSpotOptions


def _never_sent(exc: BaseException) -> bool:
    """True when urllib3 failed before the request left (connect errors): nothing was done."""
    reason = exc.reason if isinstance(exc, MaxRetryError) else exc
    return isinstance(reason, ConnectTimeoutError)  # NewConnectionError is a subclass


def _in_sdk_decoding(exc: BaseException) -> bool:
    """True when `exc` was raised while the SDK decoded an answer (its ``deserialize``)."""
    return any(
        "deserialize" in frame.name and "/hubspot/" in frame.filename.replace("\\", "/")
        for frame in traceback.extract_tb(exc.__traceback__)
    )


def _unreadable(operation: str) -> OutcomeUnknown:
    return OutcomeUnknown(f"HubSpot's answer to {operation} could not be read.")


def _object_id(answer: Any, operation: str) -> str:
    """The id of the object an answer describes; `OutcomeUnknown` when it names none."""
    object_id = getattr(answer, "id", None)
    if not isinstance(object_id, str | int) or isinstance(object_id, bool) or object_id == "":
        raise _unreadable(operation)
    return str(object_id)


def _results(answer: Any, operation: str) -> Sequence[Any]:
    """The ``results`` of a search, list or batch answer; `OutcomeUnknown` when it has none
    (every such answer has them, possibly empty: a missing list is no "nothing found")."""
    results = getattr(answer, "results", None)
    if not isinstance(results, list):
        raise _unreadable(operation)
    return results


def rate_limiter(options: HubSpotOptions, target: str = "") -> RateLimiter:
    """The limiter of ``rate_limit``/``rate_limit_store``, its slots shared by every adapter
    using this access token at this URL; its waits are counted for `target`."""
    budgets = {
        "general": Budget(options.rate_limit.requests_per_10s, 10.0),
        "search": Budget(options.rate_limit.searches_per_second, 1.0),
    }
    credential = hashlib.sha256(f"{options.base_url}|{options.access_token}".encode())
    return RateLimiter(
        budgets,
        open_store(options.rate_limit_store),
        namespace=f"hubspot:{credential.hexdigest()[:16]}",
        in_flight_seconds=options.connect_timeout + options.read_timeout + 1.0,
        target=target,
    )


class _ObservedPool:
    """An SDK connection pool whose every request is counted for the target (`observe_request`).

    The SDK sends each API call as one ``pool_manager.request``; everything else (``clear``, …)
    is the wrapped pool's.
    """

    def __init__(self, pool: Any, target: str) -> None:
        self._pool = pool
        self._target = target

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        with observe_request(self._target) as observation:
            response = self._pool.request(method, url, *args, **kwargs)
            observation.status = int(response.status)
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)


class HubSpotClient:
    """The SDK's API objects of the target named `name` (built once, sending nothing) and `send`.

    `memo` is the target's shared memo (it remembers when the daily limit resets); the adapter
    hands over the ledger-backed one when the worker binds it. `wall_clock` gives epoch seconds.
    Every request the SDK sends is counted for `name` (`observe_request`).
    """

    def __init__(
        self,
        name: str,
        options: HubSpotOptions,
        limiter: RateLimiter,
        wall_clock: Callable[[], float],
    ) -> None:
        self.name = name
        self.access_token = options.access_token
        self.base_url = options.base_url.rstrip("/")
        self.timeout = (options.connect_timeout, options.read_timeout)
        self.portal_zone = ZoneInfo(options.portal_time_zone)
        self.limiter = limiter
        self.wall_clock = wall_clock
        self.memo: Memo = MemoryMemo()
        self.policies = http_policies(self._daily_reset)
        self._api_clients: dict[str, Any] = {}
        self._factory_lock = threading.Lock()
        client = HubSpot(
            access_token=self.access_token,
            host=self.base_url,
            retry=Retry(0, read=False, redirect=False),
            api_factory=self._api_factory,
        )
        # Every `client.crm.….…_api` access builds a new API object: build them once.
        self.basic = client.crm.objects.basic_api
        self.batch = client.crm.objects.batch_api
        self.search = client.crm.objects.search_api
        self.owners = client.crm.owners.owners_api
        self.properties = client.crm.properties.core_api
        self.associations = client.crm.associations.v4.basic_api
        self.pipelines = client.crm.pipelines.pipelines_api

    def _api_factory(self, package: Any, api_name: str, config: Mapping[str, Any]) -> Any:
        """One ApiClient (one connection pool) per SDK package, shared by its APIs."""
        with self._factory_lock:
            api_client = self._api_clients.get(package.__name__)
            if api_client is None:
                configuration = package.Configuration()
                for key, value in config.items():
                    if key == "retry":
                        configuration.retries = value
                    elif key != "api_key":
                        setattr(configuration, key, value)
                api_client = package.ApiClient(configuration=configuration)
                try:
                    sdk = version("hubspot-api-client")
                except PackageNotFoundError:  # pragma: no cover - the SDK is installed
                    sdk = "unknown"
                api_client.user_agent = f"sipgate-crm-connector hubspot-api-client-python/{sdk}"
                rest = api_client.rest_client
                rest.pool_manager = _ObservedPool(rest.pool_manager, self.name)
                self._api_clients[package.__name__] = api_client
        return getattr(package, api_name)(api_client=api_client)

    def send(
        self,
        kind: str,
        operation: str,
        function: Callable[..., Any],
        *args: Any,
        before_send: Callable[[], None] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Call one SDK method under the rate limiter with timeouts; map failures to ours.

        `before_send` runs once the slot is taken, right before the request goes out (errors
        before it, e.g. the limiter's, mean nothing was sent). No answer (``None``: the SDK
        got a 2xx it does not expect) and an answer the SDK fails to decode are
        `OutcomeUnknown`: the request may have been applied.
        """
        slot = self.limiter.acquire(kind)
        try:
            if before_send is not None:
                before_send()
            answer = function(*args, _request_timeout=self.timeout, **kwargs)
        except AdapterError:
            raise
        except Exception as exc:
            error = self._translate(exc, operation, kind)
            if error is None:
                raise
            raise error from exc
        finally:
            self.limiter.release(slot)
        if answer is None:
            raise _unreadable(operation)
        return answer

    def _translate(self, exc: Exception, operation: str, kind: str) -> AdapterError | None:
        """Our error for what the SDK raised, or None when it is no HubSpot or network error."""
        status = getattr(exc, "status", None)
        if isinstance(status, int) and hasattr(exc, "body"):  # any SDK package's ApiException
            if status == 0:  # the SDK could not read the answer (or the connection broke)
                return _unreadable(operation)
            headers: Mapping[str, str] = getattr(exc, "headers", None) or {}
            # The SDK hides the method: every request counts as a write that may have arrived.
            return self.policies[kind].classify(
                status,
                headers,
                _body_json(getattr(exc, "body", None)),
                method="POST",
                operation=operation,
                now=datetime.fromtimestamp(self.wall_clock(), tz=UTC),
                secrets=(self.access_token,),
            )
        if _in_sdk_decoding(exc):  # e.g. TypeError: a 2xx body of an unexpected shape
            return _unreadable(operation)
        if isinstance(exc, HTTPError | OSError):
            what = type(exc.reason if isinstance(exc, MaxRetryError) else exc).__name__
            if _never_sent(exc):
                return RetryableError(f"Cannot connect to HubSpot for {operation} ({what}).")
            return OutcomeUnknown(f"HubSpot did not answer {operation} ({what}).")
        return None

    def _daily_reset(self, now: datetime) -> tuple[datetime, str]:
        """Until when a used-up daily limit parks the target (see `_daily_limit_parked`)."""
        return _daily_limit_parked(self.memo, now, self.portal_zone)

    def close(self) -> None:
        """Drop the SDK's connection pools and close a shared rate limit store."""
        for api_client in self._api_clients.values():
            api_client.rest_client.pool_manager.clear()
        self.limiter.close()
