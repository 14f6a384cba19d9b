"""What a mapping writes whatever the call: the values of its templates that read no data."""

from __future__ import annotations

from collections.abc import Mapping

import jinja2

__all__ = ["mapped_constants"]


def mapped_constants(templates: Mapping[str, jinja2.Template]) -> dict[str, str]:
    """Field name → the text its template renders without any data, for the templates that
    render without data (the others read the call and are left out); empty texts are left out.

    A preflight checks these against the CRM's allowed values (picklists, enumerations): a
    constant the CRM refuses fails every delivery.
    """
    constants: dict[str, str] = {}
    for name, template in templates.items():
        try:
            text = template.render().strip()
        except (jinja2.TemplateError, TypeError, ValueError):
            continue  # it reads the call (undefined without one): not a constant
        if text:
            constants[name] = text
    return constants
