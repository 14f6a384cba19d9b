"""The shipped systemd units (deploy/systemd): `systemd-analyze verify` and their hardening."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).parents[2] / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service"))
PROGRAM = "/opt/sipgate-crm/bin/sipgate-crm"
HARDENING = {
    "User": "sipgate-crm",
    "Restart": "on-failure",
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ReadWritePaths": "/var/lib/sipgate-crm",
    "WorkingDirectory": "/var/lib/sipgate-crm",
    "PrivateTmp": "yes",
    "ProtectHome": "yes",
}


def service_section(unit: Path) -> configparser.SectionProxy:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(unit.read_text())
    return parser["Service"]


def test_both_units_ship() -> None:
    assert [unit.name for unit in UNITS] == [
        "sipgate-crm-web.service",
        "sipgate-crm-worker.service",
    ]


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.stem)
def test_each_unit_runs_as_the_service_user_with_hardening(unit: Path) -> None:
    service = service_section(unit)
    assert {key: service.get(key) for key in HARDENING} == HARDENING
    command = service["ExecStart"].split()
    assert command[:2] == [PROGRAM, unit.stem.removeprefix("sipgate-crm-")]


def test_the_worker_stops_with_sigint_so_deliveries_finish() -> None:
    assert service_section(DEPLOY / "systemd" / "sipgate-crm-worker.service")["KillSignal"] == (
        "SIGINT"
    )


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.stem)
def test_systemd_analyze_verifies_the_unit(unit: Path, tmp_path: Path) -> None:
    # verify checks that ExecStart exists: point it at this checkout's interpreter's program.
    program = Path(sys.executable).parent / "sipgate-crm"
    assert program.exists(), "install the package (make .venv/.dev-installed)"
    copy = tmp_path / unit.name
    copy.write_text(unit.read_text().replace(PROGRAM, str(program)))
    result = subprocess.run(
        ["systemd-analyze", "verify", "--man=no", str(copy)],
        capture_output=True,
        text=True,
        check=False,
    )
    own = [line for line in result.stderr.splitlines() if unit.name in line]
    assert result.returncode == 0 and own == [], result.stderr
