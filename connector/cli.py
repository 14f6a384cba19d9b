"""The ``sipgate-crm`` command line: run the service, inspect it, and operate on deliveries."""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from connector.config.load import ENV_CONFIG, load_config, load_defaults, load_storage_config
from connector.config.sections import Config
from connector.logs import configure_logging, mask_number
from connector.problems import ConfigError
from connector.scenarios import SCENARIOS, scenario_body
from connector.starter import TARGET_TYPES, starter_config, variables_named

if TYPE_CHECKING:
    from connector.ledger.ledger import Ledger

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
        _config_problems(exc)


def _config_problems(exc: ConfigError) -> NoReturn:
    click.echo(f"Configuration has {len(exc.problems)} problem(s):", err=True)
    for problem in exc.problems:
        click.echo(f"  - {problem}", err=True)
    raise SystemExit(2) from exc


def _ledger(url: str) -> Ledger:
    """The ledger at `url`, migrated; a ledger that cannot be opened is one line, exit 1."""
    from connector.ledger.ledger import Ledger, LedgerUnavailable

    try:
        ledger = Ledger.from_url(url)
        ledger.migrate()
    except LedgerUnavailable as exc:
        raise click.ClickException(str(exc)) from exc
    return ledger


def _ledger_only(config_path: str) -> Ledger:
    """The ledger of the configuration, reading only its storage section (no CRM secrets)."""
    try:
        storage = load_storage_config(config_path)
    except ConfigError as exc:
        _config_problems(exc)
    return _ledger(storage.url)


def _enable_metrics(config: Config, side: str) -> None:
    """This process's metrics directory, emptied; a folder it cannot write is one line, exit 1."""
    from connector.metrics.exposition import enable_multiprocess

    directory = config.server.metrics_directory
    try:
        enable_multiprocess(directory, side, wipe=True)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise click.ClickException(f"Cannot write metrics to {directory}: {reason}.") from exc


def _setup(config: Config) -> None:
    from connector.logformat import apply_format

    configure_logging(config.log_level, [config.server.secret or ""], config.server.webhook_path)
    apply_format(config.log_format)


def _ensure_free(bind: str) -> None:
    """Exit with one line when nothing could listen on `bind` (``HOST:PORT``), e.g. a second
    ``serve`` on a port that is taken; before anything is started."""
    if bind.startswith(("unix:", "fd://")):
        return  # not a TCP port
    host, sep, port = bind.rpartition(":")
    if not sep or not port.isdigit():
        raise click.BadParameter(f"{bind!r} is not HOST:PORT.", param_hint="--bind")
    host = host.strip("[]") or "0.0.0.0"  # noqa: S104 - what gunicorn binds for ":PORT"
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn does
            probe.bind((host, int(port)))
    except OSError as exc:
        reason = "the port is taken (is the service already running?)"
        if exc.errno != errno.EADDRINUSE:
            reason = exc.strerror or str(exc)
        raise click.ClickException(f"Cannot listen on {bind}: {reason}") from exc


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
    _ensure_free(bind or config.server.bind)
    _ledger(config.storage.url).close()
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
    for address in (bind or config.server.bind, config.server.metrics_bind):
        if address:
            _ensure_free(address)
    _ledger(config.storage.url).close()
    # Before anything imports prometheus_client; gunicorn's workers inherit it.
    _enable_metrics(config, "web")
    from connector.delivery.queue import DeliveryQueue, make_huey
    from connector.web.server import GunicornServer

    def probes() -> dict[str, Callable[[], object]]:
        # Reported by /readyz, not required: webhooks are written to the ledger only.
        return {"queue": DeliveryQueue(make_huey(config.queue.url)).ping}

    try:
        server = GunicornServer(config, bind or config.server.bind, workers, threads, probes=probes)
    except ValueError as exc:  # --bind on the port of server.metrics_bind
        raise click.ClickException(str(exc)) from exc
    server.run()


@main.command()
@config_option
def worker(config_path: str) -> None:
    """Run only the delivery worker (Huey consumer and the relay that feeds it)."""
    config = _load(config_path)
    _setup(config)
    _ledger(config.storage.url).close()
    _enable_metrics(config, "worker")
    from connector.services import run_worker

    run_worker(config)


@main.command()
@click.option(
    "--target",
    "targets",
    multiple=True,
    required=True,
    type=click.Choice(TARGET_TYPES),
    help="A target type to configure (repeat for several).",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("config.yaml"),
    show_default=True,
    help="File to write; an existing file is never overwritten.",
)
@click.option(
    "--data",
    default="data",
    show_default=True,
    help="Folder for ledger, queue and metrics (relative: to the file's folder).",
)
def init(targets: tuple[str, ...], output: Path, data: str) -> None:
    """Write a commented starter configuration for the named targets."""
    text = starter_config(targets, data)
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        with output.open("x", encoding="utf-8") as file:
            file.write(text)
    except FileExistsError:
        raise click.ClickException(f"{output} exists; not overwriting it.") from None
    click.echo(f"Wrote {output}. Set these environment variables (e.g. in the secrets file):")
    for name in variables_named(text):
        click.echo(f"  {name}")
    click.echo(f"Then: sipgate-crm check-config --config {output}")


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
    """List the usable adapter types (entry-point group sipgate_crm.adapters).

    Types whose dependencies do not import (an extra not installed) are named on stderr.
    """
    from connector.adapters.registry import available_adapters, unusable_adapters

    for name, where in sorted(available_adapters().items()):
        click.echo(f"{name:<12} {where}")
    for reason in unusable_adapters().values():
        click.echo(reason, err=True)


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


def _example_body(file: str | None, scenario: str, unique: bool) -> bytes:
    suffix = uuid.uuid4().hex[:8] if unique else ""
    if not file:
        return scenario_body(scenario, suffix)
    body = Path(file).read_bytes()
    if unique:
        document = json.loads(body)
        if "vcon" in document:
            document["uuid"] = f"{document['uuid']}-{suffix}"
        else:
            document["call"]["id"] = f"{document['call']['id']}-{suffix}"
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
    "--scenario",
    type=click.Choice([*SCENARIOS, "list"]),
    default="default",
    show_default=True,
    help="Which ready-made call to send; 'list' describes them.",
)
@click.option(
    "--unique/--as-is",
    default=False,
    help="Give the call a fresh id so it is not a duplicate of an earlier run.",
)
def send_example(
    config_path: str, url: str | None, file: str | None, scenario: str, unique: bool
) -> None:
    """POST a ready-made call report (or FILE), chunked as sipgate sends it; print the answer."""
    import requests

    if scenario == "list":
        for name, known in SCENARIOS.items():
            click.echo(f"{name:<12} {known.description}")
        return

    headers = {"Content-Type": "application/json"}
    if url is None:
        config = _load(config_path)
        url = f"http://{config.server.bind}{config.server.webhook_path}"
        if config.server.secret:
            headers["Authorization"] = f"Bearer {config.server.secret}"
    body = _example_body(file, scenario, unique)
    try:
        response = requests.post(url, data=_chunks(body), headers=headers, timeout=30)
    except requests.ConnectionError as exc:
        raise click.ClickException(
            f"Could not reach {url}: nothing answers there (is the service running?)"
        ) from exc
    except requests.RequestException as exc:
        raise click.ClickException(f"Could not reach {url}: {type(exc).__name__}") from exc
    click.echo(f"{response.status_code} {response.text.strip()}")
    raise SystemExit(0 if response.ok else 1)


@main.command()
@config_option
@click.argument("call_id", required=False)
@click.option("--dead", is_flag=True, help="Replay every dead delivery.")
@click.option("--failed", is_flag=True, help="Retry every failed-retrying delivery now.")
def replay(config_path: str, call_id: str | None, dead: bool, failed: bool) -> None:
    """Deliver CALL_ID again to every target, or every dead (--dead) or retrying (--failed)
    delivery, now, with fresh attempts.

    Works on the ledger alone (no CRM secret needed): a running worker starts the deliveries
    within queue.poll_interval_seconds.
    """
    from connector.ledger.ledger import UnknownCall

    if bool(call_id) == (dead or failed):
        raise click.UsageError("Give a CALL_ID, or --dead and/or --failed.")
    ledger = _ledger_only(config_path)
    try:
        ids = ledger.replay(call_id, dead=dead, failed=failed)
    except UnknownCall as exc:
        raise click.ClickException(
            f"Unknown call id {call_id!r} (sipgate-crm status lists the call ids)."
        ) from exc
    if not ids:
        raise click.ClickException("Nothing to replay.")
    click.echo(f"{len(ids)} deliveries due again.")


def _public_refs(refs: dict[str, Any]) -> dict[str, Any]:
    """A delivery's refs for operators: the match without the records' names."""
    from connector.delivery.matching import MatchOutcome

    if isinstance(refs.get("match"), dict):
        return {**refs, "match": MatchOutcome.summary(refs["match"])}
    return refs


def _fmt_time(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else "-"


_AGO = {"m": "minutes", "h": "hours", "d": "days"}


def _since(_ctx: click.Context, _param: click.Parameter, value: str | None) -> datetime | None:
    """``--since``: ``30m``, ``2h``, ``7d`` ago, or a date/time (``2026-12-01``, UTC if no zone)."""
    if value is None:
        return None
    text = value.strip()
    if text[:-1].isdigit() and text[-1:] in _AGO:
        return datetime.now(UTC) - timedelta(**{_AGO[text[-1]]: int(text[:-1])})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise click.BadParameter("use 30m, 2h, 7d or a date such as 2026-12-01T08:00") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


#: How many recent calls `status` reads when it filters by match, time or number.
STATUS_SCAN = 5000

STATUS_LEGEND = (
    "Cells: target=status[match](attempts: last error). status: pending, processing, done, "
    "skipped, failed-retrying (tried again later), dead (replay it); match: matched, ambiguous "
    "(several records, a tie-break chose), unmatched, created (a record for the caller). "
    "remote: the other party, masked but for the last three digits. Call ids are as "
    "--call and replay take them."
)


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
@click.option(
    "--since",
    callback=_since,
    default=None,
    help="Only calls received since then: 30m, 2h, 7d or a date/time such as 2026-12-01.",
)
@click.option(
    "--number",
    default=None,
    help="Only calls with this remote number, in any format (+49 211 63553400, 021163553400).",
)
def status(
    config_path: str,
    as_json: bool,
    limit: int,
    call_id: str | None,
    failed: bool,
    unmatched: bool,
    since: datetime | None,
    number: str | None,
) -> None:
    """Recent calls and where each target's delivery stands (reads the ledger alone).

    The filters --unmatched, --since and --number look at the last 5000 calls.
    """
    from connector.ledger.ledger import CallSummary
    from connector.ledger.tables import DEAD, RETRYING
    from connector.phone import parse_sipgate, parse_stored

    try:
        region = load_defaults(config_path).region
    except ConfigError as exc:
        _config_problems(exc)
    wanted = parse_stored(number, region) if number else None
    if number and wanted is None:
        raise click.BadParameter(f"{number!r} is not a phone number.", param_hint="--number")

    def remote(row: CallSummary) -> str:
        return row.from_number if row.direction == "IN" else row.to_number

    def keep(row: CallSummary) -> bool:
        if since is not None and row.received_at < since:
            return False
        if wanted is not None:
            caller = parse_sipgate(remote(row))
            if caller is None or caller.e164 != wanted.e164:
                return False
        return not unmatched or any(
            (d.refs.get("match") or {}).get("status") in ("unmatched", "ambiguous")
            for d in row.deliveries
        )

    ledger = _ledger_only(config_path)
    filtering = unmatched or since is not None or wanted is not None
    rows = ledger.recent_calls(
        max(limit, STATUS_SCAN) if filtering else limit,
        call_id,
        (RETRYING, DEAD) if failed else (),
    )
    rows = [r for r in rows if keep(r)][:limit]
    parked = ledger.parked_targets()
    if as_json:
        for row in rows:
            data = {
                "call_id": row.call_id,
                "received_at": row.received_at.isoformat(),
                "start_time": row.start_time.isoformat() if row.start_time else None,
                "direction": row.direction,
                "remote_number": mask_number(remote(row)),
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
    width = max(len("call id"), *(len(row.call_id) for row in rows))
    columns = f"{'dir':<3} {'remote':<16} {'dur':>6}  targets"
    click.echo(f"{'received (UTC)':<20} {'call id':<{width}} {columns}")
    for row in rows:
        states = ", ".join(
            f"{d.target}={d.status}"
            + (f"[{d.refs['match']['status']}]" if d.refs.get("match") else "")
            + (f"({d.attempts}: {d.last_error})" if d.last_error else "")
            for d in row.deliveries
        )
        click.echo(
            f"{_fmt_time(row.received_at):<20} {row.call_id:<{width}} {row.direction:<3} "
            f"{mask_number(remote(row))[:16]:<16} {row.duration_ms // 1000:>5}s  {states}"
        )
    counts = ledger.counts()
    click.echo("Totals: " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))
    click.echo(click.wrap_text(STATUS_LEGEND, width=100))


@main.command("dry-run")
@config_option
@click.argument("payload", type=click.Path(exists=True, dir_okay=False))
@click.option("--target", "targets", multiple=True, help="Only this target (repeatable).")
@click.option(
    "--offline",
    is_flag=True,
    help="Reach no CRM: searches find only --assume-match; shows the planned job.",
)
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
    from connector.dryrun import DryRunError, dry_run, parse_assumption
    from connector.payload import PayloadError, report_from_json

    config = _load(config_path)
    unknown = set(targets) - {t.name for t in config.targets}
    if unknown:
        raise click.UsageError(f"No target named {', '.join(sorted(unknown))}.")
    try:
        for assumption in assumptions:
            parse_assumption(assumption, None)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    try:
        report = report_from_json(Path(payload).read_bytes())
    except (PayloadError, ValueError) as exc:
        detail = getattr(exc, "messages", str(exc))
        raise click.ClickException(f"{payload} is not a valid call report: {detail}") from exc
    try:
        result = dry_run(config, report, targets, offline=offline, assumptions=assumptions)
    except DryRunError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(json.dumps(result, indent=2, ensure_ascii=False, default=str))


@main.command()
@click.argument("kind", type=click.Choice(["config", "mapping", "forwarder"]), default="config")
def schema(kind: str) -> None:
    """Print the JSON Schema of the configuration file, of a mapping file (for editors) or of
    the document the ``webhook`` target POSTs (``forwarder``, for receivers)."""
    from connector.adapters.webhook import json_schema
    from connector.jsonschema import config_schema, mapping_file_schema

    chosen = {"config": config_schema, "mapping": mapping_file_schema, "forwarder": json_schema}
    click.echo(json.dumps(chosen[kind](), indent=2))


@main.command()
@config_option
def migrate(config_path: str) -> None:
    """Create or upgrade the ledger schema (the service also does this when it starts)."""
    config = _load(config_path)
    _ledger(config.storage.url).close()
    click.echo("Ledger schema is up to date.")


@main.command()
@config_option
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def backup(config_path: str, file: Path) -> None:
    """Write a consistent copy of the SQLite ledger to FILE, while the service runs."""
    config = _load(config_path)
    from connector.ledger.backup import BackupError, backup_sqlite

    try:
        pages = backup_sqlite(config.storage.url, file)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"Ledger copied to {file} ({pages} pages, integrity ok).")


_DURATION = re.compile(r"^(\d+)([mhdw])$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(value: str) -> timedelta:
    """``90m``, ``12h``, ``30d`` or ``8w`` as a `timedelta`; `click.BadParameter` otherwise."""
    match = _DURATION.match(value.strip())
    if not match:
        raise click.BadParameter(f"{value!r} is not a duration such as 90m, 12h, 30d or 8w.")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


@main.command()
@config_option
@click.option("--older-than", "older_than", default=None, metavar="DURATION", help="e.g. 30d.")
@click.option("--call", "call_id", default=None, help="Erase this call (the right to erasure).")
def purge(config_path: str, older_than: str | None, call_id: str | None) -> None:
    """Remove calls from the ledger, database and vcon targets: all older than DURATION or one.

    CRM records are not touched; for --call the command lists the ones that hold the call.
    """
    if (older_than is None) == (call_id is None):
        raise click.UsageError("Give --older-than DURATION or --call ID (not both).")
    config = _load(config_path)
    from connector.adapters import build_adapter
    from connector.delivery.retention import purge_before, purge_call, retaining_targets
    from connector.ledger.ledger import Ledger

    ledger = Ledger.from_url(config.storage.url)
    ledger.migrate()
    adapters = {t.name: build_adapter(t) for t in config.targets}
    try:
        targets = retaining_targets(adapters)
        if older_than is not None:
            before = datetime.now(UTC) - parse_duration(older_than)
            purged = purge_before(ledger, targets, before)
        else:
            purged = purge_call(ledger, targets, call_id or "")
    finally:
        for adapter in adapters.values():
            adapter.close()
    click.echo(f"Ledger: {purged.calls} call(s) removed.")
    for name, count in purged.targets.items():
        click.echo(f"Target {name}: {count} call(s) removed.")
    if call_id is not None and purged.erased is None and not any(purged.targets.values()):
        raise click.ClickException(
            f"No call {call_id!r} in the ledger or any database or vcon target."
        )
    held = {
        name: refs
        for name, refs in (purged.erased.refs if purged.erased else {}).items()
        if name not in targets and refs
    }
    types = {t.name: t.type for t in config.targets}
    if held:
        click.echo("These CRM records hold the call; erase them in the CRM:")
        for name, refs in held.items():
            shown = {k: v for k, v in _public_refs(refs).items() if not k.endswith("_pending")}
            click.echo(f"  {name} ({types.get(name, 'not configured')}): {json.dumps(shown)}")
