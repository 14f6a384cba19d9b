"""Find and build adapters: the ``sipgate_crm.adapters`` entry points, or a ``module:Class`` path.

The built-in adapters are registered through the same entry-point group as third-party ones, so
the core uses exactly the API it offers others.
"""

from __future__ import annotations

import importlib
from importlib.metadata import EntryPoint, entry_points

from connector.adapters.base import Adapter
from connector.config.sections import TargetConfig

__all__ = [
    "ENTRY_POINT_GROUP",
    "AdapterNotFound",
    "adapter_class",
    "available_adapters",
    "build_adapter",
    "unusable_adapters",
]

ENTRY_POINT_GROUP = "sipgate_crm.adapters"
#: How a shipped adapter's extra is installed (the package is not on an index; README: Install).
_EXTRA_HINT = (
    "pip install -e '.[{extra}]' in a clone, or "
    "'sipgate-crm-connector[{extra}] @ git+URL' (README, Install)"
)


class AdapterNotFound(LookupError):
    """No adapter is installed under that type name."""


def _load(ep: EntryPoint) -> type[Adapter]:
    try:
        loaded = ep.load()
    except ImportError as exc:
        dist = ep.dist.name if ep.dist else None
        fix = (
            f"install the extra: {_EXTRA_HINT.format(extra=ep.name)}"
            if dist == "sipgate-crm-connector"
            else f"reinstall {dist or 'its package'} with its dependencies"
        )
        raise AdapterNotFound(
            f"Adapter type {ep.name!r} cannot be used, its dependencies are missing ({exc}): {fix}."
        ) from exc
    return _checked(loaded, f"Entry point {ep.name!r}")


def _survey() -> tuple[dict[str, str], dict[str, str]]:
    usable: dict[str, str] = {}
    unusable: dict[str, str] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            _load(ep)
            usable[ep.name] = ep.value
        except AdapterNotFound as exc:
            unusable[ep.name] = str(exc)
    return usable, unusable


def available_adapters() -> dict[str, str]:
    """Adapter types whose code and dependencies import, and where each comes from."""
    return _survey()[0]


def unusable_adapters() -> dict[str, str]:
    """Registered adapter types that cannot be loaded, with the reason (a missing extra)."""
    return _survey()[1]


def _checked(obj: object, where: str) -> type[Adapter]:
    if not (isinstance(obj, type) and issubclass(obj, Adapter)):
        raise AdapterNotFound(f"{where} is not a subclass of connector.adapters.Adapter.")
    return obj


def adapter_class(type_name: str) -> type[Adapter]:
    """The adapter class for a target `type`: an entry-point name or ``package.module:Class``."""
    for ep in entry_points(group=ENTRY_POINT_GROUP, name=type_name):
        return _load(ep)
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
        f"CRM adapters need their extra: {_EXTRA_HINT.format(extra='hubspot')}."
    )


def build_adapter(target: TargetConfig) -> Adapter:
    """The one way an adapter instance is made: for `target`, from its validated options."""
    return adapter_class(target.type).from_config(target)
