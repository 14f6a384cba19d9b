"""Webhook benchmark: throughput and time-to-2xx of the service against three baselines.

All four run under the same gunicorn settings (by default the service's: `ServerConfig.workers`
processes of `ServerConfig.threads` gthread threads) on loopback, in one run:

* (b) bare: read the body, answer 204;
* (a) durable insert: one SQLite insert of the body with the ledger's settings (WAL,
  synchronous=FULL), the floor for "answered only once on disk";
* (c) same-stack floor: Flask, the product's marshmallow validation and one raw SQLite insert
  with ``synchronous=FULL`` — what the service would cost without its own features;
* service: ``sipgate-crm web`` with the default SQLite ledger and queue, unique call ids.

It prints requests/s with a closed loop of concurrent chunked POSTs (the median of interleaved
rounds), then p50/p99 time-to-2xx under an open-loop load of 200 requests/s, and the ratios
service/(c), service/(a) and (a)/(b). Figures are ratios because absolute numbers depend on the
machine; the load generator shares the machine.

Run: ``make bench`` (or ``python bench/webhook_throughput.py --requests 2000``).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import suppress
from pathlib import Path

import requests
import yaml

from connector.config.sections import ServerConfig

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = json.loads((ROOT / "connector" / "examples" / "example-v1.json").read_text())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def body_for(i: int) -> bytes:
    document = dict(EXAMPLE)
    document["call"] = {**EXAMPLE["call"], "id": f"bench-{os.getpid()}-{i}"}
    return json.dumps(document).encode()


def chunked_post(port: int, path: str, body: bytes) -> int:
    """One POST with Transfer-Encoding: chunked (as sipgate sends); returns the status code."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        sock.sendall(head.encode() + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
        data = b""
        while b"\r\n" not in data:
            part = sock.recv(4096)
            if not part:
                break
            data += part
    return int(data.split(b" ", 2)[1])


class Server:
    def __init__(self, name: str, command: list[str], env: dict[str, str], port: int, path: str):
        self.name, self.port, self.path = name, port, path
        self.proc = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                return
            except requests.RequestException:  # not listening yet, or busy starting
                time.sleep(0.1)
        raise RuntimeError(f"{name} did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def throughput(server: Server, total: int, concurrency: int, offset: int) -> float:
    counter = iter(range(offset, offset + total))
    lock = threading.Lock()
    failures: list[int] = []

    def run() -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            status = chunked_post(server.port, server.path, body_for(i))
            if status >= 300:
                failures.append(status)

    threads = [threading.Thread(target=run) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if failures:
        raise RuntimeError(f"{server.name}: {len(failures)} non-2xx answers, e.g. {failures[0]}")
    return total / elapsed


def latency_at_rate(
    server: Server, rate: float, seconds: float, offset: int
) -> tuple[float, float]:
    """Open loop: start a request every 1/rate s regardless of answers; p50/p99 in ms."""
    latencies: list[float] = []
    lock = threading.Lock()

    def one(i: int, scheduled: float) -> None:
        with suppress(OSError):  # no answer within the client's 30 s: counted as that long
            chunked_post(server.port, server.path, body_for(i))
        with lock:
            latencies.append(time.perf_counter() - scheduled)

    threads: list[threading.Thread] = []
    start = time.perf_counter()
    n = int(rate * seconds)
    for i in range(n):
        scheduled = start + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        t = threading.Thread(target=one, args=(offset + i, scheduled))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    q = statistics.quantiles(latencies, n=100)
    return q[49] * 1000, q[98] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=1000, help="per round and server")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=ServerConfig.workers)
    parser.add_argument("--threads", type=int, default=ServerConfig.threads)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="sipgate-bench-"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    gunicorn = [
        sys.executable,
        "-m",
        "gunicorn",
        "-w",
        str(args.workers),
        "--log-level",
        "warning",
        "-k",
        "gthread" if args.threads > 1 else "sync",
        "--threads",
        str(args.threads),
    ]
    config = folder / "config.yaml"
    service_port = free_port()
    config.write_text(
        yaml.safe_dump(
            {
                "server": {
                    "bind": f"127.0.0.1:{service_port}",
                    "workers": args.workers,
                    "threads": args.threads,
                },
                "storage": {"url": "sqlite:///ledger.db"},
                "queue": {"url": "sqlite:///queue.db"},
                "log_level": "WARNING",
                "targets": [{"name": "warehouse", "type": "database", "url": "sqlite:///calls.db"}],
            }
        )
    )

    def start(name: str) -> Server:
        if name == "service":
            cmd = [sys.executable, "-m", "connector", "web", "--config", str(config)]
            return Server(name, cmd, env, service_port, "/webhooks/sipgate")
        port = free_port()
        app = {
            "bare": "bench.baselines:bare_app",
            "durable": "bench.baselines:durable_insert_app",
            "floor": "bench.baselines:same_stack_app",
        }[name]
        own_env = {**env, "BENCH_SQLITE": str(folder / f"{name}.db")}
        return Server(
            name, [*gunicorn, "-b", f"127.0.0.1:{port}", app], own_env, port, "/webhooks/sipgate"
        )

    servers: dict[str, Server] = {}
    results: dict[str, dict[str, float]] = {}
    offset = 0
    try:
        for name in ("bare", "durable", "floor", "service"):
            servers[name] = start(name)
        for server in servers.values():
            throughput(server, 100, args.concurrency, offset)  # warm-up
            offset += 100
        # Interleave the rounds so that a busy moment of the machine hits every server alike.
        samples: dict[str, list[float]] = {name: [] for name in servers}
        for _ in range(args.rounds):
            for name, server in servers.items():
                samples[name].append(throughput(server, args.requests, args.concurrency, offset))
                offset += args.requests
        for name, server in servers.items():
            p50, p99 = latency_at_rate(server, args.rate, args.seconds, offset)
            offset += int(args.rate * args.seconds)
            rps = statistics.median(samples[name])
            results[name] = {"rps": rps, "p50_ms": p50, "p99_ms": p99}
            rate = f"{args.rate:.0f} req/s"
            print(f"{name:<8} {rps:8.0f} req/s   at {rate}: p50 {p50:6.1f} ms  p99 {p99:6.1f} ms")
    finally:
        for server in servers.values():
            server.stop()

    rps = {name: result["rps"] for name, result in results.items()}
    print(f"service / (c) same-stack floor: {rps['service'] / rps['floor']:.2f}   (goal ≥ 0.90)")
    print(f"service / (a) durable insert:   {rps['service'] / rps['durable']:.2f}")
    print(f"(a) durable insert / (b) bare:  {rps['durable'] / rps['bare']:.2f}")
    p99 = results["service"]["p99_ms"]
    print(f"service p99 time-to-2xx at {args.rate:.0f} req/s: {p99:.1f} ms (goal ≤ 50 ms)")


if __name__ == "__main__":
    main()
