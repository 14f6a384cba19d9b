"""Per-target call filters: which calls a target takes, and why it skips the others."""

from __future__ import annotations

from connector.config.policy import Filters
from connector.payload import CallReport
from connector.phone import is_anonymous, is_internal, parse_sipgate, parse_stored

__all__ = ["skip_reason"]


def skip_reason(report: CallReport, filters: Filters, default_region: str) -> str | None:
    """Why the target must skip this call, or ``None`` when it takes it.

    Checked in this order: direction, channel deny and allow lists (name or id), minimum
    duration, withheld caller, internal call (remote party of five digits or fewer, or one of
    ``own_numbers``), blocked numbers. The reason is recorded in the ledger, never dropped.
    """
    if report.direction not in filters.directions:
        return f"direction {report.direction} is not taken by this target"
    channel = report.channel
    names = {channel.id, channel.name} if channel else set()
    if filters.channels_deny and names & set(filters.channels_deny):
        return f"channel {channel.name if channel else ''!r} is denied"
    if filters.channels_allow and not names & set(filters.channels_allow):
        name = channel.name if channel else "none"
        return f"channel {name!r} is not in the allowed channels"
    if report.duration.total_seconds() < filters.min_duration_seconds:
        return f"shorter than {filters.min_duration_seconds:g} s"
    remote = report.remote_number
    if filters.skip_anonymous and is_anonymous(remote):
        return "anonymous caller"
    if filters.skip_internal and is_internal(
        remote, filters.own_numbers, default_region=default_region
    ):
        return "internal call"
    if filters.blocked_numbers:
        caller = parse_sipgate(remote)
        if caller is not None:
            for blocked in filters.blocked_numbers:
                number = parse_stored(blocked, default_region)
                if number is not None and number.e164 == caller.e164:
                    return "blocked number"
    return None
