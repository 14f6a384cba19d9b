"""Configuration loading: env secrets, relative paths, every problem reported with its location."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from connector.config.load import load_config
from connector.problems import ConfigError

ROOT = Path(__file__).parents[2]


def write(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(document) if not isinstance(document, str) else document)
    return path


def test_the_shipped_example_is_valid() -> None:
    config = load_config(ROOT / "config.example.yaml")
    assert config.server.webhook_path == "/webhooks/sipgate"
    assert config.server.max_body_bytes == 5 * 1024 * 1024
    assert config.server.allowed_ips == ()
    assert [t.type for t in config.targets] == ["database"]
    # Relative SQLite paths resolve against the config file's folder, not the cwd.
    assert config.storage.url == f"sqlite:///{ROOT / 'data' / 'connector.db'}"
    assert config.targets[0].options.url == f"sqlite:///{ROOT / 'data' / 'calls.db'}"


def test_secrets_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", "s3cret-value-of-some-length")
    path = write(
        tmp_path,
        {
            "server": {
                "secret": "${HOOK_SECRET}",
                "allowed_ips": ["217.116.118.254", "10.0.0.0/8"],
            },
            "queue": {"url": "${QUEUE_URL:-sqlite:///q.db}"},
            "targets": [{"name": "w", "type": "database"}],
        },
    )
    config = load_config(path)
    assert config.server.secret == "s3cret-value-of-some-length"
    assert config.queue.url == f"sqlite:///{tmp_path / 'q.db'}"
    assert len(config.server.allowed_ips) == 2


def test_config_path_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, {"targets": [{"name": "w", "type": "database"}]})
    monkeypatch.setenv("SIPGATE_CRM_CONFIG", str(path))
    assert load_config().source == path.resolve()


def test_every_problem_is_reported_at_once_with_its_location(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "server": {"allowed_ips": ["not-an-ip"], "secret": "${MISSING_SECRET_VAR}", "tpyo": 1},
            "queue": {"url": "amqp://nope"},
            "targets": [
                {"name": "w", "type": "database", "urll": "sqlite:///x.db"},
                {"name": "Bad Name", "type": "database"},
                {"name": "x", "type": "no-such-crm"},
            ],
        },
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    where = {p.path for p in info.value.problems}
    assert {
        "server.secret",
        "server.allowed_ips[0]",
        "server.tpyo",
        "queue.url",
        "targets[0].urll",
        "targets[1].name",
        "targets[2].type",
    } <= where
    assert all(p.file == str(path) for p in info.value.problems)
    assert "MISSING_SECRET_VAR" in str(info.value)


def test_duplicate_target_names(tmp_path: Path) -> None:
    path = write(tmp_path, {"targets": [{"name": "w", "type": "database"}] * 2})
    with pytest.raises(ConfigError, match="Duplicate target name"):
        load_config(path)


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "targets:\n  - name: w\n   type: database\n")
    with pytest.raises(ConfigError, match="line 3"):
        load_config(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Cannot read"):
        load_config(tmp_path / "absent.yaml")


def test_a_short_secret_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path, {"server": {"secret": "short"}, "targets": [{"name": "w", "type": "database"}]}
    )
    with pytest.raises(ConfigError, match=r"server\.secret"):
        load_config(path)


def test_adapter_by_import_path(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {"targets": [{"name": "w", "type": "connector.adapters.database:DatabaseAdapter"}]},
    )
    assert load_config(path).targets[0].options.table_prefix == "sipgate_"


def test_an_unknown_top_level_key_does_not_hide_other_problems(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "sever": {"bind": "x"},
            "queue": {"url": "sqlite://data/queue.db"},
            "targets": [{"name": "w", "type": "database", "table_prefix": "BAD PREFIX"}],
        },
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert {"sever", "queue.url", "targets[0].table_prefix"} <= {
        p.path for p in info.value.problems
    }


def test_an_empty_variable_takes_the_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QUEUE_URL", "")
    path = write(
        tmp_path,
        {
            "queue": {"url": "${QUEUE_URL:-memory://}"},
            "targets": [{"name": "w", "type": "database"}],
        },
    )
    assert load_config(path).queue.url == "memory://"


def test_a_missing_mapping_in_a_folder_does_not_fall_back_to_a_shipped_one(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {"targets": [{"name": "w", "type": "database", "mapping": "custom/database.yaml"}]},
    )
    with pytest.raises(ConfigError, match="not found"):
        load_config(path)


def test_owner_ids_may_be_written_as_numbers(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "targets:\n- name: w\n  type: database\n"
        "  owners: {users: {w0: 12345678}, fallback: 87654321}\n",
    )
    owners = load_config(path).targets[0].policy.owners
    assert owners.users == {"w0": "12345678"} and owners.fallback == "87654321"


def test_an_unset_variable_is_reported_once_not_with_its_follow_on_errors(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {
            "server": {"secret": "${SURELY_UNSET_SECRET}"},
            "targets": [{"name": "w", "type": "database"}],
        },
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert [(p.path, p.message) for p in info.value.problems] == [
        ("server.secret", "Environment variable SURELY_UNSET_SECRET is not set.")
    ]


@pytest.mark.parametrize(
    ("metrics_bind", "message"),
    [
        ("127.0.0.1:8000", "another port than server.bind"),
        ("127.0.0.1", "HOST:PORT"),
        ("127.0.0.1:99999", "HOST:PORT"),
    ],
)
def test_a_metrics_bind_needs_a_port_of_its_own(
    tmp_path: Path, metrics_bind: str, message: str
) -> None:
    server = {"bind": "127.0.0.1:8000", "metrics_bind": metrics_bind}
    path = write(tmp_path, {"server": server, "targets": [{"name": "w", "type": "database"}]})
    with pytest.raises(ConfigError, match=message) as info:
        load_config(path)
    assert [p.path for p in info.value.problems] == ["server.metrics_bind"]


def test_a_metrics_bind_is_loaded(tmp_path: Path) -> None:
    server = {"bind": "127.0.0.1:8000", "metrics_bind": "[::1]:9464"}
    path = write(tmp_path, {"server": server, "targets": [{"name": "w", "type": "database"}]})
    assert load_config(path).server.metrics_bind == "[::1]:9464"
