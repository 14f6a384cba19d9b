"""Find and build adapters: the ``sipgate_crm.adapters`` entry points, or a ``module:Class`` path.

The built-in adapters are registered through the same entry-point group as third-party ones, so
the core uses exactly the API it offers others.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from connector.adapters.base import Adapter
from connector.config.sections import TargetConfig

__all__ = [
    "ENTRY_POINT_GROUP",
    "AdapterNotFound",
    "adapter_class",
    "available_adapters",
    "build_adapter",
]

ENTRY_POINT_GROUP = "sipgate_crm.adapters"


class AdapterNotFound(LookupError):
    """No adapter is installed under that type name."""


def available_adapters() -> dict[str, str]:
    """Installed adapter types and where each comes from (``module:Class``)."""
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def _checked(obj: object, where: str) -> type[Adapter]:
    if not (isinstance(obj, type) and issubclass(obj, Adapter)):
        raise AdapterNotFound(f"{where} is not a subclass of connector.adapters.Adapter.")
    return obj


def adapter_class(type_name: str) -> type[Adapter]:
    """The adapter class for a target `type`: an entry-point name or ``package.module:Class``."""
    for ep in entry_points(group=ENTRY_POINT_GROUP, name=type_name):
        return _checked(ep.load(), f"Entry point {type_name!r}")
    if ":" in type_name:
        module_name, _, attr = type_name.partition(":")
        try:
            module = importlib.import_module(module_name)
            return _checked(getattr(module, attr), type_name)
        except (ImportError, AttributeError) as exc:
            raise AdapterNotFound(f"Cannot import adapter {type_name!r}: {exc}") from exc
    known = ", ".join(sorted(available_adapters())) or "none"
    raise AdapterNotFound(
        f"Unknown target type {type_name!r}. Installed: {known}. "
        "CRM adapters need their extra, e.g. pip install 'sipgate-crm-connector[hubspot]'."
    )


def build_adapter(target: TargetConfig) -> Adapter:
    """The one way an adapter instance is made: for `target`, from its validated options."""
    return adapter_class(target.type).from_config(target)
