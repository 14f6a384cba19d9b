"""The ledger's tables and delivery states: the schema migrations and queries share."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from connector.sql import UTCDateTime

__all__ = [
    "CONTENT_REMOVED",
    "DEAD",
    "DONE",
    "PENDING",
    "PROCESSING",
    "RETRYING",
    "REVIEW",
    "SKIPPED",
    "STATUSES",
    "calls",
    "console_actions",
    "console_requests",
    "deliveries",
    "delivery_attempts",
    "metadata",
    "target_memos",
    "target_states",
]

PENDING = "pending"
PROCESSING = "processing"
DONE = "done"
SKIPPED = "skipped"
RETRYING = "failed-retrying"
DEAD = "dead"
#: Held for a person to choose the record (``tie_break: review`` / ``on_no_match: review``);
#: due again at its deadline, when the target's fallback policy applies.
REVIEW = "review"
STATUSES = (PENDING, PROCESSING, DONE, SKIPPED, RETRYING, DEAD, REVIEW)

#: A call's raw body once retention removed its content.
CONTENT_REMOVED = b""


metadata = MetaData()

calls = Table(
    "calls",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("dedupe_key", String(300), nullable=False, unique=True),
    Column("call_id", String(255), nullable=False),
    Column("payload_version", String(20), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("raw_body", LargeBinary(), nullable=False),
    Column("start_time", UTCDateTime(), nullable=True),
    Column("direction", String(3), nullable=False),
    Column("from_number", String(64), nullable=False),
    Column("to_number", String(64), nullable=False),
    Column("duration_ms", BigInteger(), nullable=False),
    Column("channel_name", String(255), nullable=True),
    # The sipgate users on the call ("Max Mustermann, Erika Beispiel"), for the console's filter.
    Column("user_names", String(500), nullable=True),
    Index("ix_calls_call_id", "call_id"),
    Index("ix_calls_from_number", "from_number"),
    Index("ix_calls_to_number", "to_number"),
    Index("ix_calls_received_at", "received_at"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("call_pk", ForeignKey("calls.id", ondelete="CASCADE"), nullable=False),
    Column("target", String(64), nullable=False),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer(), nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime(), nullable=False),
    Column("lease_until", UTCDateTime(), nullable=True),
    Column("lease_token", String(36), nullable=True),
    # Set when a queue message was sent; the relay sends another only once this has passed (or
    # the queue is empty: the message is gone). Cleared by a claim, even one that finds nothing due.
    Column("queued_until", UTCDateTime(), nullable=True),
    Column("last_error", Text(), nullable=True),
    Column("refs", JSON(), nullable=False, default=dict),
    # Retries give up `give_up_after_hours` after this: creation, or the last replay.
    Column("retry_since", UTCDateTime(), nullable=True),
    # Failures of an unclassified error type since creation or the last replay.
    Column("unexpected_failures", Integer(), nullable=False, default=0, server_default="0"),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
    UniqueConstraint("call_pk", "target", name="uq_delivery_call_target"),
    Index("ix_deliveries_call_pk", "call_pk"),
    Index("ix_deliveries_status", "status", "next_attempt_at"),
)

target_states = Table(
    "target_states",
    metadata,
    Column("target", String(64), primary_key=True),
    Column("parked_until", UTCDateTime(), nullable=True),
    Column("reason", Text(), nullable=True),
    # When the current parking began (a target parked again while parked keeps it).
    Column("parked_since", UTCDateTime(), nullable=True),
)


target_memos = Table(
    "target_memos",
    metadata,
    Column("target", String(64), primary_key=True),
    Column("key", String(255), primary_key=True),
    Column("value", Text(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)


#: Every attempt's outcome, written with the delivery's own update (the console shows them).
delivery_attempts = Table(
    "delivery_attempts",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("delivery_id", ForeignKey("deliveries.id", ondelete="CASCADE"), nullable=False),
    Column("attempt", Integer(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=False),
    Column("status", String(20), nullable=False),
    Column("detail", Text(), nullable=True),
    Index("ix_delivery_attempts_delivery_id", "delivery_id"),
)

#: What console users did (who, what, when), including failed logins for the rate limit.
console_actions = Table(
    "console_actions",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("at", UTCDateTime(), nullable=False),
    Column("user", String(64), nullable=False),
    Column("action", String(40), nullable=False),
    Column("call_id", String(255), nullable=True),
    Column("target", String(64), nullable=True),
    Column("detail", JSON(), nullable=False, default=dict),
    Index("ix_console_actions_call_id", "call_id"),
    Index("ix_console_actions_action_at", "action", "at"),
)

#: Work the console asks of the worker (the web side never talks to a CRM): a target's check,
#: a search in a target's CRM. The worker stores the result; the page shows it.
console_requests = Table(
    "console_requests",
    metadata,
    Column(
        "id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    ),
    Column("kind", String(20), nullable=False),
    Column("target", String(64), nullable=False),
    Column("params", JSON(), nullable=False, default=dict),
    Column("status", String(20), nullable=False),
    Column("result", JSON(), nullable=True),
    Column("requested_by", String(64), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("finished_at", UTCDateTime(), nullable=True),
    Index("ix_console_requests_status", "status"),
    Index("ix_console_requests_kind_target", "kind", "target"),
)
