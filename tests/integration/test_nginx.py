"""The shipped nginx site (deploy/nginx) run by real nginx, TLS on, in front of real gunicorn."""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
import requests
import trustme
from werkzeug.security import generate_password_hash

from connector.config.sections import ServerConfig
from tests.integration.harness import ROOT, RunningService, free_port, wait_until

pytestmark = pytest.mark.integration
SITE = ROOT / "deploy" / "nginx" / "sipgate-crm.conf"
FIXTURES = Path(__file__).parents[1] / "fixtures"
SECRET = "the-path-secret-0123456789"
WEBHOOK = f"/webhooks/sipgate/{SECRET}"
PASSWORD = "correct horse battery staple"
SIPGATE = "127.0.0.2"  # the allowlisted sender: another loopback address than nginx's own
NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/sbin/nginx") if Path(p).exists()), None
)

if NGINX is None and os.environ.get("CI") != "true":
    pytest.skip("nginx is not installed (apt-get install nginx)", allow_module_level=True)


def substitute(text: str, old: str, new: str) -> str:
    """Replace `old` in the shipped site, failing when the site no longer contains it."""
    assert old in text, f"deploy/nginx/sipgate-crm.conf no longer contains {old!r}"
    return text.replace(old, new)


class RunningNginx:
    """nginx in the foreground with the shipped site, its ports and paths moved into `folder`."""

    def __init__(self, folder: Path, upstream_port: int, cert: Path, key: Path) -> None:
        self.folder = folder
        self.https_port, self.http_port = free_port(), free_port()
        self.access_log = folder / "access.log"
        site = SITE.read_text()
        for old, new in (
            ("listen 443 ssl;", f"listen 127.0.0.1:{self.https_port} ssl;"),
            ("listen 80;", f"listen 127.0.0.1:{self.http_port};"),
            ("server 127.0.0.1:8000;", f"server 127.0.0.1:{upstream_port};"),
            ("/etc/letsencrypt/live/crm-hook.example.com/fullchain.pem", str(cert)),
            ("/etc/letsencrypt/live/crm-hook.example.com/privkey.pem", str(key)),
            ("/var/log/nginx/sipgate-crm.access.log", str(self.access_log)),
            ("root /var/www/html;", f"root {folder / 'webroot'};"),
        ):
            site = substitute(site, old, new)
        temp = "\n".join(
            f"    {kind}_temp_path {folder / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        user = "user root;\n" if os.geteuid() == 0 else ""  # temp paths live in our tmp folder
        (folder / "nginx.conf").write_text(
            f"{user}worker_processes 1;\npid {folder / 'nginx.pid'};\n"
            f"error_log {folder / 'error.log'} info;\nevents {{ worker_connections 64; }}\n"
            f"http {{\n{temp}\n{site}\n}}\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert NGINX is not None, "CI=true: nginx must be installed (.ci/run installs it)"
        self.process = process = subprocess.Popen(
            [
                NGINX,
                "-p",
                str(self.folder),
                "-c",
                str(self.folder / "nginx.conf"),
                "-e",
                str(self.folder / "error.log"),
                "-g",
                "daemon off;",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(self.folder / "nginx.stderr").open("wb"),
        )
        wait_until(lambda: process.poll() is not None or self._listening(), "nginx to listen")
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited: {(self.folder / 'nginx.stderr').read_text()}")

    def _listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.https_port), timeout=1):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[RunningService, RunningNginx, ssl.SSLContext]]:
    authority = trustme.CA()
    issued = authority.issue_cert("127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    issued.private_key_and_cert_chain_pem.write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    client = ssl.create_default_context()
    authority.configure_trust(client)
    authority.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    (tmp_path / "nginx").mkdir()
    (tmp_path / "service").mkdir()
    service = RunningService(
        tmp_path / "service",
        server={
            "secret": SECRET,
            "allowed_ips": [SIPGATE],
            "trusted_proxies": 1,
            "proxy_addresses": ["127.0.0.1"],
        },
        console={
            "enabled": True,
            "secret_key": "k" * 40,
            "users": [
                {
                    "name": "otto",
                    "password_hash": generate_password_hash(PASSWORD, "pbkdf2:sha256:1000"),
                    "role": "operator",
                }
            ],
        },
    )
    nginx = RunningNginx(tmp_path / "nginx", service.port, cert, key)
    try:
        service.start_web()
        nginx.start()
        yield service, nginx, client
    finally:
        nginx.stop()
        service.stop()


def report(call_id: str) -> bytes:
    document = json.loads((FIXTURES / "example-v1.json").read_bytes())
    document["call"]["id"] = call_id
    return json.dumps(document).encode()


def request(
    nginx: RunningNginx,
    client: ssl.SSLContext,
    method: str,
    path: str,
    body: bytes | Iterable[bytes] | None = None,
    source: str = SIPGATE,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """One HTTPS request to nginx from `source`; an iterable body is sent chunked."""
    connection = http.client.HTTPSConnection(
        "127.0.0.1", nginx.https_port, context=client, timeout=60, source_address=(source, 0)
    )
    try:
        chunked = body is not None and not isinstance(body, bytes)
        connection.request(
            method,
            path,
            body=body,
            headers={"Content-Type": "application/json", **(headers or {})},
            encode_chunked=chunked,
        )
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def chunks(body: bytes, size: int = 700) -> Iterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_the_site_accepts_bodies_as_large_as_the_connector_does() -> None:
    match = re.search(r"client_max_body_size (\d+)m;", SITE.read_text())
    assert match, "client_max_body_size in MiB"
    assert int(match.group(1)) * 1024 * 1024 >= ServerConfig().max_body_bytes


def test_webhooks_through_nginx_with_tls(
    stack: tuple[RunningService, RunningNginx, ssl.SSLContext],
) -> None:
    service, nginx, client = stack
    status, answer = request(nginx, client, "POST", WEBHOOK, report("pbx-length"))
    assert (status, json.loads(answer).get("status")) == (200, "accepted"), answer
    status, answer = request(nginx, client, "POST", WEBHOOK, chunks(report("pbx-chunked")))
    assert (status, json.loads(answer).get("status")) == (200, "accepted"), answer
    assert sorted(row["call_id"] for row in service.status()) == ["pbx-chunked", "pbx-length"]


def test_only_the_allowlisted_sender_arrives_via_forwarded_for(
    stack: tuple[RunningService, RunningNginx, ssl.SSLContext],
) -> None:
    service, nginx, client = stack
    # Another sender claiming to be sipgate: nginx replaces the header with the address it saw.
    forged = {"X-Forwarded-For": SIPGATE}
    status, _ = request(
        nginx, client, "POST", WEBHOOK, report("pbx-forged"), source="127.0.0.1", headers=forged
    )
    assert status == 403
    assert service.status() == []


def test_metrics_only_from_this_host(
    stack: tuple[RunningService, RunningNginx, ssl.SSLContext],
) -> None:
    _, nginx, client = stack
    assert request(nginx, client, "GET", "/metrics", source=SIPGATE)[0] == 403
    status, body = request(nginx, client, "GET", "/metrics", source="127.0.0.1")
    assert status == 200 and b"# TYPE" in body


def test_plain_http_is_redirected_and_the_secret_stays_out_of_the_access_log(
    stack: tuple[RunningService, RunningNginx, ssl.SSLContext],
) -> None:
    _, nginx, client = stack
    assert request(nginx, client, "POST", WEBHOOK, report("pbx-logged"))[0] == 200
    plain = http.client.HTTPConnection("127.0.0.1", nginx.http_port, timeout=30)
    plain.request("GET", WEBHOOK)
    redirect = plain.getresponse()
    assert redirect.status == 301
    assert redirect.getheader("Location", "").startswith("https://")
    plain.close()
    nginx.stop()  # flushes and closes the log
    log = nginx.access_log.read_text()
    assert SECRET not in log
    assert f"{SIPGATE} [" in log and '"POST /webhooks/sipgate/***" 200' in log


def test_the_console_over_tls_keeps_its_secure_session(
    stack: tuple[RunningService, RunningNginx, ssl.SSLContext], tmp_path: Path
) -> None:
    _, nginx, _ = stack
    base = f"https://127.0.0.1:{nginx.https_port}/console"
    with requests.Session() as browser:
        tls = {
            "verify": str(tmp_path / "ca.pem"),
            "timeout": 60,
        }  # per request: $REQUESTS_CA_BUNDLE
        login = browser.get(f"{base}/login", **tls)
        assert login.status_code == 200
        found = re.search(r'name="csrf_token" value="([^"]+)"', login.text)
        assert found, login.text
        form = {"user": "otto", "password": PASSWORD, "csrf_token": found.group(1)}
        answer = browser.post(f"{base}/login", data=form, allow_redirects=False, **tls)
        assert answer.status_code in (302, 303), answer.text
        # The session cookie is Secure: it comes back only because nginx speaks TLS.
        assert browser.get(f"{base}/", allow_redirects=False, **tls).status_code == 200


def test_certificate_renewals_are_answered_over_plain_http(
    stack: tuple[RunningService, RunningNginx, ssl.SSLContext],
) -> None:
    _, nginx, _ = stack
    challenge = nginx.folder / "webroot" / ".well-known" / "acme-challenge" / "token-0123"
    challenge.parent.mkdir(parents=True)
    challenge.write_text("token-0123.thumbprint")
    plain = http.client.HTTPConnection("127.0.0.1", nginx.http_port, timeout=30)
    try:
        plain.request("GET", "/.well-known/acme-challenge/token-0123")
        answer = plain.getresponse()
        assert (answer.status, answer.read()) == (200, b"token-0123.thumbprint")
    finally:
        plain.close()
