"""The errors the Salesforce test server answers with: REST error lists and record errors."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["UNSUPPORTED", "ApiError", "RecordError", "malformed_query", "unsupported"]

#: How every message about something the server does not emulate starts.
UNSUPPORTED = "SalesforceTestServer does not support"


class ApiError(Exception):
    """An error that ends the whole request (``[{"message", "errorCode"}]`` body)."""

    def __init__(
        self,
        status: int,
        error_code: str,
        message: str,
        fields: Sequence[str] | None = None,
    ) -> None:
        super().__init__(f"{error_code}: {message}")
        self.status = status
        self.body: list[dict[str, Any]] = [{"message": message, "errorCode": error_code}]
        if fields is not None:
            self.body[0]["fields"] = list(fields)


@dataclass
class RecordError:
    """An error about one record (REST ``errorCode`` / collections ``statusCode``)."""

    status_code: str
    message: str
    fields: list[str] = field(default_factory=list)

    def rest(self) -> dict[str, Any]:
        return {"message": self.message, "errorCode": self.status_code, "fields": self.fields}

    def collection(self) -> dict[str, Any]:
        return {"statusCode": self.status_code, "message": self.message, "fields": self.fields}


def malformed_query(message: str) -> ApiError:
    """``400 MALFORMED_QUERY`` with `message`."""
    return ApiError(400, "MALFORMED_QUERY", message)


def unsupported(what: str) -> ApiError:
    """``400 MALFORMED_QUERY`` saying the server does not emulate `what`."""
    return malformed_query(f"{UNSUPPORTED} {what}")
