"""OwnerCache: one lookup per e-mail address and ttl."""

from __future__ import annotations

from connector.adapters import OwnerCache


def test_answers_are_cached_by_address_without_case() -> None:
    asked: list[str] = []
    now = [0.0]

    def lookup(email: str) -> str | None:
        asked.append(email)
        return "o-1" if email.lower() == "erika@example.invalid" else None

    cache = OwnerCache(lookup, ttl=60, clock=lambda: now[0])
    assert cache.resolve("Erika@Example.invalid") == "o-1"
    assert cache.resolve(" erika@example.invalid ") == "o-1"
    assert cache.resolve("nobody@example.invalid") is None
    assert cache.resolve("nobody@example.invalid") is None
    assert len(asked) == 2
    now[0] = 61.0
    assert cache.resolve("erika@example.invalid") == "o-1"
    assert len(asked) == 3


def test_a_ttl_of_zero_asks_every_time() -> None:
    asked: list[str] = []
    cache = OwnerCache(lambda e: asked.append(e) or None, ttl=0)
    cache.resolve("a@example.invalid")
    cache.resolve("a@example.invalid")
    assert len(asked) == 2
