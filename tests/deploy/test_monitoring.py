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
