"""The ``hubspot`` adapter class: its options turned into attributes, and its parts joined.

Each part is a mixin from the module of its purpose: `search`, `contacts`, `owners`, `check`,
`records`, `pending` and `write`, all on `sdk.SdkBase` (the SDK's API objects and `_send`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any, Self
from zoneinfo import ZoneInfo

from connector.adapters.hubspot.check import CheckMixin
from connector.adapters.hubspot.contacts import ContactsMixin
from connector.adapters.hubspot.options import CALL_ID_PROPERTY, HubSpotOptions
from connector.adapters.hubspot.records import _TEXT_LIMIT
from connector.adapters.hubspot.sdk import _rate_limiter
from connector.adapters.hubspot.search import _RecordCache
from connector.adapters.hubspot.write import WriteMixin
from connector.adapters.kit.ratelimit import RateLimiter
from connector.config.sections import TargetConfig


class HubSpotAdapter(ContactsMixin, CheckMixin, WriteMixin):
    """Logs calls in HubSpot; see the package docstring for what is written and how."""

    type_name = "hubspot"
    config_schema = HubSpotOptions
    default_mapping = resources.files(__package__) / "mapping.yaml"
    searchable_objects = ("contact", "company")
    creatable_objects = ("contact",)
    field_limits = {"hs_call_title": _TEXT_LIMIT, "hs_call_body": _TEXT_LIMIT}
    supports_overflow = True  # a note takes what does not fit the call

    def __init__(
        self,
        name: str,
        options: Mapping[str, Any],
        *,
        limiter: RateLimiter | None = None,
        wall_clock: Callable[[], float] = time.time,
        cache_clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Build the SDK client and the rate limiter; nothing is sent yet.

        `limiter` replaces the one built from ``rate_limit``/``rate_limit_store``; `wall_clock`
        (epoch seconds: pending creates, daily limit) and `cache_clock` are for tests.
        """
        super().__init__(name, options)
        self.access_token: str = options["access_token"]
        self.base_url: str = str(options.get("base_url") or "https://api.hubapi.com").rstrip("/")
        connect = float(options.get("connect_timeout", 5.0))
        read = float(options.get("read_timeout", 30.0))
        self.timeout = (connect, read)
        self.call_id_property: str = options.get("call_id_property") or CALL_ID_PROPERTY
        self.unique_call_property: str | None = options.get("unique_call_property")
        self.associate_company = bool(options.get("associate_company", True))
        self.matched_objects: tuple[str, ...] = ()
        self.deal_rule: str = options.get("deal_rule") or "none"
        self.ticket: Mapping[str, Any] | None = options.get("ticket")
        self.portal_zone = ZoneInfo(options.get("portal_time_zone") or "UTC")
        self.wall_clock = wall_clock
        self.cache = _RecordCache(float(options.get("cache_seconds", 300.0)), cache_clock)
        self._owner_cache: dict[str, tuple[float, str | None]] = {}
        self._cache_clock = cache_clock
        #: What `check` verifies: owner references by config path, call properties by name.
        self.owner_refs: dict[str, str] = {
            f"owners.{user}": owner for user, owner in (options.get("owners") or {}).items()
        }
        self.checked_properties: list[str] = list(
            dict.fromkeys(
                [
                    self.call_id_property,
                    *([self.unique_call_property] if self.unique_call_property else []),
                    *(options.get("required_properties") or ()),
                ]
            )
        )

        if limiter is None:
            limiter = _rate_limiter(options, self.base_url, self.access_token, connect + read + 1.0)
        self.limiter = limiter

        self._build_client()

    @classmethod
    def from_config(cls, target: TargetConfig) -> Self:
        """The adapter for `target`; `check` also verifies the policy's owners (users and
        fallback), that every call property the mapping writes exists in HubSpot and the
        scopes the policy's matching needs (companies)."""
        adapter = cls(target.name, target.options)
        adapter.matched_objects = tuple(target.policy.matching.objects)
        owners = target.policy.owners
        adapter.owner_refs.update({f"owners.users.{u}": o for u, o in owners.users.items()})
        if owners.fallback:
            adapter.owner_refs["owners.fallback"] = owners.fallback
        mapped = [*target.policy.fields, *target.policy.limits]
        adapter.checked_properties = list(dict.fromkeys([*adapter.checked_properties, *mapped]))
        return adapter
