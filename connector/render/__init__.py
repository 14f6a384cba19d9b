"""Rendering CRM field values from the operator's sandboxed Jinja2 templates.

`connector.render.context` builds the template context from a `CallReport` (and describes every
variable), `connector.render.sandbox` compiles and renders templates, `connector.render.check`
test-renders them when the configuration is checked, `connector.render.filters` holds the
template filters and `connector.render.locales` the labels and languages. Import from those
modules; this package exports nothing itself.
"""
