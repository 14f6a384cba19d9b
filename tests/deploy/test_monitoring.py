"""The shipped alerting rules and dashboard: valid for promtool, and about metrics that exist."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from connector.metrics.families import (
    CRM_REQUEST_SECONDS,
    CRM_REQUESTS,
    DELIVERIES,
    DELIVERY_SECONDS,
    RATE_LIMIT_WAIT_SECONDS,
    RATE_LIMIT_WAITS,
    WEBHOOKS,
)
from connector.metrics.ledger import LedgerCollector
from connector.services import Services

DEPLOY = Path(__file__).parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "sipgate-crm-dashboard.json"
NAME = re.compile(r"\bsipgate_crm_[a-z_]+")
LAST_WEBHOOK = "sipgate_crm_ledger_last_webhook_timestamp_seconds"


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is missing: .ci/run installs the Debian package prometheus")
        pytest.skip("promtool not installed (Debian package prometheus)")
    return found


def _exposed(services: Services) -> set[str]:
    names = {f.name for f in LedgerCollector(services.ledger).collect()}
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    families = (WEBHOOKS, DELIVERIES, DELIVERY_SECONDS, CRM_REQUESTS, CRM_REQUEST_SECONDS)
    for metric in (*families, RATE_LIMIT_WAITS, RATE_LIMIT_WAIT_SECONDS):
        for family in metric.describe():
            names.update(family.name + suffix for suffix in suffixes[family.type])
    return names


def test_promtool_accepts_the_rules() -> None:
    result = subprocess.run(
        [_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_rules_and_dashboard_use_only_metrics_the_service_exposes(services: Services) -> None:
    exposed = _exposed(services)
    rules = yaml.safe_load(RULES.read_text())
    expressions = [r["expr"] for group in rules["groups"] for r in group["rules"]]
    dashboard = json.loads(DASHBOARD.read_text())
    expressions += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {name for expr in expressions for name in NAME.findall(expr)}
    assert used and used <= exposed
    alerts = {r["alert"] for group in rules["groups"] for r in group["rules"]}
    assert {"SipgateCrmDeadDeliveries", "SipgateCrmTargetParked", "SipgateCrmNoWebhooks"} <= alerts


def _no_webhooks_fires_at(tmp_path: Path, series: str, eval_times: dict[str, bool]) -> None:
    """`promtool test rules`: SipgateCrmNoWebhooks fires exactly at the `eval_times` marked
    true. promtool's clock starts at 1970-01-01 00:00 UTC, a Thursday."""
    rules = yaml.safe_load(RULES.read_text())
    rule = next(
        r for g in rules["groups"] for r in g["rules"] if r.get("alert") == "SipgateCrmNoWebhooks"
    )
    firing = [{"exp_labels": rule["labels"], "exp_annotations": rule["annotations"]}]
    test = {
        "rule_files": [str(RULES)],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {
                        "series": f'{LAST_WEBHOOK}{{instance="web"}}',
                        "values": series,
                    }
                ],
                "alert_rule_test": [
                    {
                        "eval_time": at,
                        "alertname": "SipgateCrmNoWebhooks",
                        "exp_alerts": firing if fires else [],
                    }
                    for at, fires in eval_times.items()
                ],
            }
        ],
    }
    path = tmp_path / "no-webhooks.test.yml"
    path.write_text(yaml.safe_dump(test))
    result = subprocess.run(
        [_promtool(), "test", "rules", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_webhooks_for_four_hours_alerts_only_on_weekday_working_hours(tmp_path: Path) -> None:
    # The last webhook arrived at 00:00 on Thursday and none since.
    _no_webhooks_fires_at(
        tmp_path,
        "0+0x7000",
        {
            "3h": False,  # Thursday 03:00: night
            "12h30m": True,  # Thursday 12:30: over four hours, working hours
            "20h": False,  # Thursday 20:00: evening
            "60h": False,  # Saturday 12:00
            "108h": True,  # Monday 12:00
        },
    )


def test_no_webhooks_stays_quiet_while_calls_arrive(tmp_path: Path) -> None:
    # The newest call is always the current minute's.
    _no_webhooks_fires_at(tmp_path, "0+60x7000", {"12h30m": False, "108h": False})
