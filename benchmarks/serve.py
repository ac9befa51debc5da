"""Inference server throughput and latency, the server in its own process on loopback.

    python -m benchmarks.serve [--seconds 10] [--repeat 3] [--workers 2] [--baseline-root DIR]
Throughput: 1,000-row text/csv requests back to back on 1, 2 and 4 keep-alive connections, each request one of 64
bodies of different pairs (5,000 entities, about 64,000 distinct addresses), so no cache sees the same body twice
in a row. Latency: single-pair requests paced at 100 per second; p50 and p99 from the client's clock. The baseline:
`--baseline-root` is a checkout of another commit (`git worktree add /tmp/base 3157f0a`), whose server is measured
with the same client, bodies and model in the same run, as it ran (its own defaults).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from benchmarks.logins import simulate_logins
from scripts.ipinsights.train import main as train_main


def _train_model(root: Path) -> Path:
    logins = simulate_logins(users=5000, events=200_000, seed=4)
    folder = root / "input" / "data" / "train"
    folder.mkdir(parents=True)
    (folder / "train.csv").write_text("".join(f"{u},{ip}\n" for u, ip in zip(logins.users, logins.ips, strict=True)))
    (root / "input" / "config").mkdir(parents=True)
    (root / "input" / "config" / "hyperparameters.json").write_text(
        json.dumps({"num_entity_vectors": "10000", "vector_dim": "128", "epochs": "1", "mini_batch_size": "1000"})
    )
    if train_main(["--root", str(root)]) != 0:
        message = "training the benchmark model failed"
        raise RuntimeError(message)
    return root / "model"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def serving(model: Path, options: tuple[str, ...] = (), root: Path | None = None) -> Iterator[int]:
    """The inference server (this checkout's, or the one at `root`) in its own process on a free loopback port,
    answering /ping; yields the port."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "scripts.ipinsights.serve", "--model-dir", str(model), "--port", str(port), *options],
        stderr=subprocess.DEVNULL,
        cwd=root,
    )
    try:
        for _ in range(100):
            try:
                http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/ping")
                break
            except OSError:
                time.sleep(0.2)
        yield port
    finally:
        server.terminate()
        server.wait()


def _post(connection: http.client.HTTPConnection, body: bytes) -> None:
    connection.request("POST", "/invocations", body=body, headers={"Content-Type": "text/csv"})
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        message = f"server answered {response.status}"
        raise RuntimeError(message)


def throughput(port: int, bodies: list[bytes], rows: int, seconds: float, clients: int) -> float:
    done = [0] * clients

    def worker(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port)
        deadline = time.perf_counter() + seconds
        sent = index
        while time.perf_counter() < deadline:
            _post(connection, bodies[sent % len(bodies)])
            sent += clients
            done[index] += rows

    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / (time.perf_counter() - started)


def latency(port: int, body: bytes, rate: float, seconds: float) -> list[float]:
    connection = http.client.HTTPConnection("127.0.0.1", port)
    samples = []
    start = time.perf_counter()
    for index in range(int(rate * seconds)):
        wait = start + index / rate - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        sent = time.perf_counter()
        _post(connection, body)
        samples.append((time.perf_counter() - sent) * 1000)
    return samples


def bodies_of(count: int) -> list[bytes]:
    """`count` 1,000-row CSV bodies of the benchmark's 5,000 users, each from its own draw of addresses."""
    bodies = []
    for seed in range(count):
        logins = simulate_logins(users=5000, events=1000, seed=100 + seed)
        bodies.append("".join(f"{u},{ip}\n" for u, ip in zip(logins.users, logins.ips, strict=True)).encode())
    return bodies


def measure(port: int, bodies: list[bytes], seconds: float, repeat: int, label: str) -> dict[int, float]:
    """Median pairs/s on 1, 2 and 4 connections, and the latency of single pairs; printed under `label`."""
    throughput(port, bodies, 1000, 2.0, 1)  # warm-up
    medians = {}
    for clients in (1, 2, 4):
        rates = [throughput(port, bodies, 1000, seconds, clients) for _ in range(repeat)]
        medians[clients] = statistics.median(rates)
        print(
            f"{label}: 1,000-row CSV requests, {clients} connection(s): median {medians[clients]:,.0f} "
            f"pairs/s (runs: {', '.join(f'{r:,.0f}' for r in rates)})",
            flush=True,
        )
    single = bodies[0].split(b"\n", 1)[0] + b"\n"
    runs = [latency(port, single, 100.0, seconds) for _ in range(repeat)]
    p50 = [statistics.quantiles(r, n=100)[49] for r in runs]
    p99 = [statistics.quantiles(r, n=100)[98] for r in runs]
    print(
        f"{label}: single-pair requests at 100 req/s: p50 median {statistics.median(p50):.2f} ms "
        f"(runs: {', '.join(f'{v:.2f}' for v in p50)}), p99 median {statistics.median(p99):.2f} ms "
        f"(runs: {', '.join(f'{v:.2f}' for v in p99)})",
        flush=True,
    )
    return medians


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2, help="The server's --workers (this machine: 2 cores)")
    parser.add_argument("--baseline-root", type=Path, help="A checkout of the baseline commit, measured alike")
    arguments = parser.parse_args(argv)
    bodies = bodies_of(64)
    with tempfile.TemporaryDirectory() as folder:
        model = _train_model(Path(folder))
        with serving(model, ("--workers", str(arguments.workers))) as port:
            current = measure(port, bodies, arguments.seconds, arguments.repeat, f"{arguments.workers} workers")
        if arguments.baseline_root is None:
            return 0
        with serving(model, root=arguments.baseline_root.resolve()) as port:
            baseline = measure(port, bodies, arguments.seconds, arguments.repeat, "baseline")
        ratios = ", ".join(f"{clients}: {current[clients] / baseline[clients]:.2f}x" for clients in current)
        print(f"pairs/s against the baseline, by connections: {ratios}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
