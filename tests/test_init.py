"""`sipgate-crm init`: a commented starter configuration that `check-config` accepts."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from connector.cli import main
from connector.config.load import load_config
from connector.starter import TARGET_TYPES, starter_config, variables_named

SECRETS = {
    "SIPGATE_WEBHOOK_SECRET": "s" * 24,
    "SIPGATE_CRM_METRICS_TOKEN": "m" * 24,
    "HUBSPOT_TOKEN": "pat-eu1-test",
    "SF_CLIENT_ID": "client",
    "SF_CLIENT_SECRET": "secret",
    "ZENDESK_TOKEN": "zd-token",
    "WEBHOOK_SIGNING_SECRET": "whsec_" + "A" * 43 + "=",
}


def test_init_writes_a_config_check_config_accepts(tmp_path: Path) -> None:
    output = tmp_path / "config.yaml"
    runner = CliRunner()
    written = runner.invoke(
        main, ["init", "--target", "hubspot", "--target", "database", "--output", str(output)]
    )
    assert written.exit_code == 0, written.output
    assert "SIPGATE_WEBHOOK_SECRET" in written.output and "HUBSPOT_TOKEN" in written.output
    checked = runner.invoke(main, ["check-config", "--config", str(output)], env=SECRETS)
    assert checked.exit_code == 0, checked.output
    assert "2 target(s): hubspot (hubspot), warehouse (database)" in checked.output
    assert output.read_text().startswith("# sipgate-crm-connector configuration")


def test_check_config_names_the_secrets_still_unset(tmp_path: Path) -> None:
    output = tmp_path / "config.yaml"
    runner = CliRunner()
    runner.invoke(main, ["init", "--target", "hubspot", "--output", str(output)])
    checked = runner.invoke(
        main,
        ["check-config", "--config", str(output)],
        env={"SIPGATE_WEBHOOK_SECRET": None, "HUBSPOT_TOKEN": None},
    )
    assert checked.exit_code != 0
    assert "SIPGATE_WEBHOOK_SECRET" in checked.output and "HUBSPOT_TOKEN" in checked.output


def test_init_makes_the_folder_of_the_file(tmp_path: Path) -> None:
    output = tmp_path / "etc" / "sipgate-crm" / "config.yaml"
    answer = CliRunner().invoke(main, ["init", "--target", "database", "--output", str(output)])
    assert answer.exit_code == 0, answer.output
    assert output.read_text().startswith("# sipgate-crm-connector configuration")


def test_the_secrets_template_names_every_secret_a_starter_configuration_uses() -> None:
    template = (Path(__file__).parents[1] / "deploy" / "sipgate-crm.env").read_text()
    lines = [line for line in template.splitlines() if line and not line.startswith("#")]
    listed = {line.split("=", 1)[0] for line in lines}
    needed = set(variables_named(starter_config(TARGET_TYPES)))
    assert needed <= listed, sorted(needed - listed)


def test_init_never_overwrites(tmp_path: Path) -> None:
    output = tmp_path / "config.yaml"
    output.write_text("mine")
    answer = CliRunner().invoke(main, ["init", "--target", "database", "--output", str(output)])
    assert answer.exit_code != 0 and "not overwriting" in answer.output
    assert output.read_text() == "mine"


@pytest.mark.parametrize("target", TARGET_TYPES)
def test_every_target_type_loads(
    target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = starter_config([target])
    for name in variables_named(text):
        monkeypatch.setenv(name, SECRETS[name])
    path = tmp_path / "config.yaml"
    path.write_text(text)
    assert [t.type for t in load_config(str(path)).targets] == [target]


def test_unknown_target_types_are_refused() -> None:
    answer = CliRunner().invoke(main, ["init", "--target", "pipedrive"])
    assert answer.exit_code == 2 and "pipedrive" in answer.output


def test_the_data_folder_holds_ledger_queue_metrics_and_sqlite_targets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SIPGATE_WEBHOOK_SECRET", "SIPGATE_CRM_METRICS_TOKEN"):
        monkeypatch.setenv(name, SECRETS[name])
    data = tmp_path / "var" / "sipgate-crm"
    path = tmp_path / "etc" / "config.yaml"
    path.parent.mkdir()
    path.write_text(starter_config(["database"], str(data)))
    config = load_config(str(path))
    assert config.storage.url == f"sqlite:///{data}/connector.db"
    assert config.queue.url == f"sqlite:///{data}/queue.db"
    assert config.server.metrics_directory == data / "metrics"
    assert config.server.metrics_bind == "127.0.0.1:9464"
    assert config.targets[0].options.url == f"sqlite:///{data}/calls.db"


@pytest.mark.parametrize("target", TARGET_TYPES)
def test_every_starter_configuration_matches_the_published_schema(target: str) -> None:
    """What editors check while the operator fills the file in (Salesforce's auth included)."""
    import jsonschema
    import yaml

    from connector.jsonschema import config_schema

    jsonschema.validate(yaml.safe_load(starter_config([target])), config_schema())


def test_the_schema_tells_the_salesforce_logins_apart() -> None:
    import jsonschema

    from connector.jsonschema import config_schema

    schema = config_schema()
    target = {"name": "sf", "type": "salesforce", "instance_url": "https://acme.my.salesforce.com"}
    for auth in (
        {"client_id": "id", "client_secret": "s", "domain": "acme.my"},
        {"consumer_key": "k", "username": "u", "private_key_file": "key.pem"},
        {"session_id": "00D"},
    ):
        jsonschema.validate({"targets": [{**target, "auth": auth}]}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"targets": [{**target, "auth": {"client_id": "id"}}]}, schema)
