"""sipgate-crm-connector: receive sipgate Conversation Intelligence webhooks and log every call on
the right CRM record, through one adapter per target."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sipgate-crm-connector")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
