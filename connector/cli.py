"""The ``sipgate-crm`` command line: run the service, inspect it, and operate on deliveries."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import click

from connector.config.load import ENV_CONFIG, load_config
from connector.config.sections import Config
from connector.logs import configure_logging, mask_number
from connector.problems import ConfigError

__all__ = ["main"]

F = TypeVar("F", bound=Callable[..., Any])


def config_option(func: F) -> F:
    """The ``--config FILE`` option shared by every command (or ``$SIPGATE_CRM_CONFIG``)."""
    return click.option(
        "--config",
        "config_path",
        envvar=ENV_CONFIG,
        default="config.yaml",
        show_default=True,
        type=click.Path(dir_okay=False),
        help=f"Configuration file (or ${ENV_CONFIG}).",
    )(func)


def _load(config_path: str) -> Config:
    try:
        return load_config(config_path)
    except ConfigError as exc:
        click.echo(f"Configuration has {len(exc.problems)} problem(s):", err=True)
        for problem in exc.problems:
            click.echo(f"  - {problem}", err=True)
        raise SystemExit(2) from exc


def _setup(config: Config) -> None:
    configure_logging(config.log_level, [config.server.secret or ""])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sipgate-crm-connector")
def main() -> None:
    """sipgate CRM connector: log sipgate AI call reports on the right CRM records."""


# --- running ----------------------------------------------------------------------------------


@main.command()
@config_option
@click.option("--bind", default=None, help="HOST:PORT to listen on (default: server.bind).")
def serve(config_path: str, bind: str | None) -> None:
    """Run the web server and the delivery worker together (one command for small setups)."""
    config = _load(config_path)
    _setup(config)
    from connector.ledger.ledger import Ledger

    Ledger.from_url(config.storage.url).migrate()
    base = [sys.executable, "-m", "connector"]
    env = {**os.environ, ENV_CONFIG: str(config.source or config_path)}
    web_cmd = [*base, "web", "--bind", bind or config.server.bind]
    children = {
        "web": subprocess.Popen(web_cmd, env=env),
        "worker": subprocess.Popen([*base, "worker"], env=env),
    }
    click.echo(
        f"Serving on http://{bind or config.server.bind}{config.server.webhook_path}", err=True
    )

    stopping = False

    def stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        children["web"].send_signal(signal.SIGTERM)
        children["worker"].send_signal(signal.SIGINT)  # Huey: finish running tasks, then stop

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    exit_code = 0
    while True:
        finished = {name: p.poll() for name, p in children.items()}
        if all(code is not None for code in finished.values()):
            break
        if not stopping and any(code is not None for code in finished.values()):
            name = next(n for n, code in finished.items() if code is not None)
            click.echo(f"The {name} process exited ({finished[name]}); stopping.", err=True)
            exit_code = 1
            stop(signal.SIGTERM, None)
        time.sleep(0.2)
    raise SystemExit(exit_code)


@main.command()
@config_option
@click.option("--bind", default=None, help="HOST:PORT to listen on (default: server.bind).")
@click.option("--workers", type=int, default=None, help="gunicorn worker processes.")
@click.option("--threads", type=int, default=None, help="Threads per worker process.")
def web(config_path: str, bind: str | None, workers: int | None, threads: int | None) -> None:
    """Run only the web server (gunicorn) that receives webhooks."""
    config = _load(config_path)
    _setup(config)
    from connector.delivery.queue import DeliveryQueue, make_huey
    from connector.ledger.ledger import Ledger
    from connector.web.server import GunicornServer

    def probes() -> dict[str, Callable[[], object]]:
        # Reported by /readyz, not required: webhooks are written to the ledger only.
        return {"queue": DeliveryQueue(make_huey(config.queue.url)).ping}

    Ledger.from_url(config.storage.url).migrate()
    GunicornServer(config, bind or config.server.bind, workers, threads, probes=probes).run()


@main.command()
@config_option
def worker(config_path: str) -> None:
    """Run only the delivery worker (Huey consumer and the relay that feeds it)."""
    config = _load(config_path)
    _setup(config)
    from connector.services import run_worker

    run_worker(config)


# --- checking -----------------------------------------------------------------------------------


@main.command("check-config")
@config_option
def check_config(config_path: str) -> None:
    """Validate the configuration and report every problem with its location."""
    config = _load(config_path)
    click.echo(
        f"{config.source}: OK — {len(config.targets)} target(s): "
        + ", ".join(f"{t.name} ({t.type})" for t in config.targets)
    )


@main.command()
@config_option
@click.argument("target", required=False)
def check(config_path: str, target: str | None) -> None:
    """Preflight the targets (or one TARGET, by name or type): credentials, permissions, fields."""
    config = _load(config_path)
    from connector.adapters import build_adapter

    chosen = [t for t in config.targets if target in (None, t.name, t.type)]
    if not chosen:
        raise click.UsageError(f"No target named or of type {target!r}.")
    failed = False
    for t in chosen:
        adapter = build_adapter(t)
        try:
            for result in adapter.check():
                failed |= not result.ok
                mark = (
                    click.style("ok  ", fg="green") if result.ok else click.style("FAIL", fg="red")
                )
                click.echo(f"{mark} {t.name}: {result.message}")
        finally:
            adapter.close()
    raise SystemExit(1 if failed else 0)


@main.command()
def adapters() -> None:
    """List the installed adapter types (entry-point group sipgate_crm.adapters)."""
    from connector.adapters import available_adapters

    for name, where in sorted(available_adapters().items()):
        click.echo(f"{name:<12} {where}")


@main.group()
def console() -> None:
    """The sales-ops console (``console:`` in the configuration)."""


@console.command("hash-password")
@click.password_option("--password", help="The password (asked for when not given).")
def hash_password(password: str) -> None:
    """Print a password hash for console.users[].password_hash."""
    from connector.web.console.auth import hash_password as make_hash

    click.echo(make_hash(password))


# --- operating ------------------------------------------------------------------------------------


def _example_body(file: str | None, unique: bool) -> bytes:
    if file:
        body = Path(file).read_bytes()
    else:
        body = resources.files("connector").joinpath("examples/example-v1.json").read_bytes()
    if unique:
        document = json.loads(body)
        document["call"]["id"] = f"{document['call']['id']}-{uuid.uuid4().hex[:8]}"
        body = json.dumps(document).encode()
    return body


def _chunks(body: bytes, size: int = 1024) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


@main.command("send-example")
@config_option
@click.option("--url", default=None, help="Webhook URL (default: from the configuration).")
@click.option(
    "--file",
    "file",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Payload to send instead of sipgate's example.",
)
@click.option(
    "--unique/--as-is",
    default=False,
    help="Give the call a fresh id so it is not a duplicate of an earlier run.",
)
def send_example(config_path: str, url: str | None, file: str | None, unique: bool) -> None:
    """POST sipgate's example report, chunked as sipgate sends it, and print the answer."""
    import requests

    headers = {"Content-Type": "application/json"}
    if url is None:
        config = _load(config_path)
        url = f"http://{config.server.bind}{config.server.webhook_path}"
        if config.server.secret:
            headers["Authorization"] = f"Bearer {config.server.secret}"
    body = _example_body(file, unique)
    try:
        response = requests.post(url, data=_chunks(body), headers=headers, timeout=30)
    except requests.RequestException as exc:
        raise click.ClickException(f"Could not reach {url}: {exc}") from exc
    click.echo(f"{response.status_code} {response.text.strip()}")
    raise SystemExit(0 if response.ok else 1)


@main.command()
@config_option
@click.argument("call_id", required=False)
@click.option("--dead", is_flag=True, help="Replay every dead delivery.")
def replay(config_path: str, call_id: str | None, dead: bool) -> None:
    """Deliver CALL_ID again to every target (or every dead delivery with --dead)."""
    if bool(call_id) == dead:
        raise click.UsageError("Give a CALL_ID or --dead (not both).")
    config = _load(config_path)
    from connector.services import Services

    services = Services.open(config)
    ids = services.ledger.replay(call_id, dead=dead)
    if not ids:
        raise click.ClickException("Nothing to replay.")
    with click.progressbar(ids, label="Enqueuing", file=sys.stderr) as bar:
        for delivery_id in bar:
            services.queue.enqueue(delivery_id)
    click.echo(f"{len(ids)} deliveries queued again.")


def _public_refs(refs: dict[str, Any]) -> dict[str, Any]:
    """A delivery's refs for operators: the match without the records' names."""
    from connector.delivery.matching import MatchOutcome

    if isinstance(refs.get("match"), dict):
        return {**refs, "match": MatchOutcome.summary(refs["match"])}
    return refs


def _fmt_time(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


@main.command()
@config_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per call.")
@click.option("--limit", default=20, show_default=True, help="How many recent calls.")
@click.option("--call", "call_id", default=None, help="Only this call id.")
@click.option("--failed", is_flag=True, help="Only calls with a retrying or dead delivery.")
@click.option(
    "--unmatched",
    is_flag=True,
    help="Only calls that matched no CRM record, or several (ambiguous).",
)
def status(
    config_path: str,
    as_json: bool,
    limit: int,
    call_id: str | None,
    failed: bool,
    unmatched: bool,
) -> None:
    """Recent calls and where each target's delivery stands."""
    config = _load(config_path)
    from connector.ledger.ledger import Ledger
    from connector.ledger.tables import DEAD, RETRYING

    ledger = Ledger.from_url(config.storage.url)
    ledger.migrate()
    rows = ledger.recent_calls(
        limit if not unmatched else max(limit, 1000), call_id, (RETRYING, DEAD) if failed else ()
    )
    if unmatched:
        rows = [
            r
            for r in rows
            if any(
                (d.refs.get("match") or {}).get("status") in ("unmatched", "ambiguous")
                for d in r.deliveries
            )
        ][:limit]
    parked = ledger.parked_targets()
    if as_json:
        for row in rows:
            data = {
                "call_id": row.call_id,
                "received_at": row.received_at.isoformat(),
                "start_time": row.start_time.isoformat() if row.start_time else None,
                "direction": row.direction,
                "remote_number": mask_number(
                    row.from_number if row.direction == "IN" else row.to_number
                ),
                "duration_ms": row.duration_ms,
                "channel": row.channel_name,
                "targets": {
                    d.target: {
                        **{
                            k: v
                            for k, v in asdict(d).items()
                            if k not in ("target", "next_attempt_at", "refs")
                        },
                        "refs": _public_refs(d.refs),
                        "next_attempt_at": d.next_attempt_at.isoformat(),
                        "parked_until": parked[d.target][0].isoformat()
                        if d.target in parked
                        else None,
                    }
                    for d in row.deliveries
                },
            }
            click.echo(json.dumps(data, ensure_ascii=False))
        return
    for target, (until, reason) in parked.items():
        click.secho(f"Target {target} parked until {_fmt_time(until)} UTC: {reason}", fg="yellow")
    if not rows:
        click.echo("No calls yet.")
        return
    header = f"{'received (UTC)':<20} {'call id':<44} {'dir':<3} {'remote':<16} {'dur':>6}  targets"
    click.echo(header)
    for row in rows:
        remote = mask_number(row.from_number if row.direction == "IN" else row.to_number)
        states = ", ".join(
            f"{d.target}={d.status}"
            + (f"[{d.refs['match']['status']}]" if d.refs.get("match") else "")
            + (f"({d.attempts}: {d.last_error})" if d.last_error else "")
            for d in row.deliveries
        )
        click.echo(
            f"{_fmt_time(row.received_at):<20} {row.call_id[:44]:<44} {row.direction:<3} "
            f"{remote[:16]:<16} {row.duration_ms // 1000:>5}s  {states}"
        )
    counts = ledger.counts()
    click.echo("Totals: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))


@main.command("dry-run")
@config_option
@click.argument("payload", type=click.Path(exists=True, dir_okay=False))
@click.option("--target", "targets", multiple=True, help="Only this target (repeatable).")
@click.option("--offline", is_flag=True, help="Reach no CRM: searches find only --assume-match.")
@click.option(
    "--assume-match",
    "assumptions",
    multiple=True,
    metavar="TYPE:ID[:NAME]",
    help="With --offline: a record the search finds, e.g. contact:123 (repeatable).",
)
def dry_run_command(
    config_path: str,
    payload: str,
    targets: tuple[str, ...],
    offline: bool,
    assumptions: tuple[str, ...],
) -> None:
    """Print, as JSON, what each target would do with the call in PAYLOAD; write nothing."""
    from connector.dryrun import dry_run
    from connector.payload import PayloadError, report_from_json

    config = _load(config_path)
    unknown = set(targets) - {t.name for t in config.targets}
    if unknown:
        raise click.UsageError(f"No target named {', '.join(sorted(unknown))}.")
    try:
        report = report_from_json(Path(payload).read_bytes())
    except (PayloadError, ValueError) as exc:
        detail = getattr(exc, "messages", str(exc))
        raise click.ClickException(f"{payload} is not a valid call report: {detail}") from exc
    try:
        result = dry_run(config, report, targets, offline=offline, assumptions=assumptions)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(json.dumps(result, indent=2, ensure_ascii=False, default=str))


@main.command()
@click.argument("kind", type=click.Choice(["config", "mapping"]), default="config")
def schema(kind: str) -> None:
    """Print the JSON Schema of the configuration file or of a mapping file (for editors)."""
    from connector.jsonschema import config_schema, mapping_file_schema

    document = config_schema() if kind == "config" else mapping_file_schema()
    click.echo(json.dumps(document, indent=2))


@main.command()
@config_option
def migrate(config_path: str) -> None:
    """Create or upgrade the ledger schema (the service also does this when it starts)."""
    config = _load(config_path)
    from connector.ledger.ledger import Ledger

    Ledger.from_url(config.storage.url).migrate()
    click.echo("Ledger schema is up to date.")
