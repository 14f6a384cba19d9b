"""mapped_constants: the values a mapping writes whatever the call."""

from __future__ import annotations

from connector.adapters import mapped_constants
from connector.render.sandbox import make_environment


def test_only_templates_that_read_no_data_are_constants() -> None:
    environment = make_environment()
    templates = {
        name: environment.from_string(source)
        for name, source in {
            "sipgate_sentiment": " neutral ",
            "hs_call_title": "{{ headline }}",
            "sipgate_origin": "{% if false %}{{ summary }}{% endif %}phone",
            "empty": "",
        }.items()
    }
    assert mapped_constants(templates) == {
        "sipgate_sentiment": "neutral",
        "sipgate_origin": "phone",
    }
