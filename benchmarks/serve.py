"""Inference server throughput and latency, the server in its own process on loopback.

    python -m benchmarks.serve [--seconds 10]
Throughput: 1,000-row text/csv requests back to back on one keep-alive connection (and on two). Latency: single-pair
requests paced at 100 per second; p50 and p99 from the client's clock.
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
def serving(model: Path) -> Iterator[int]:
    """The inference server in its own process on a free loopback port, answering /ping; yields the port."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "scripts.ipinsights.serve", "--model-dir", str(model), "--port", str(port)],
        stderr=subprocess.DEVNULL,
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


def throughput(port: int, body: bytes, rows: int, seconds: float, clients: int) -> float:
    done = [0] * clients

    def worker(index: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port)
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            _post(connection, body)
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder, serving(_train_model(Path(folder))) as port:
        logins = simulate_logins(users=5000, events=1000, seed=9)
        body = "".join(f"{u},{ip}\n" for u, ip in zip(logins.users, logins.ips, strict=True)).encode()
        throughput(port, body, 1000, 2.0, 1)  # warm-up
        for clients in (1, 2):
            rates = [throughput(port, body, 1000, arguments.seconds, clients) for _ in range(arguments.repeat)]
            print(
                f"1,000-row CSV requests, {clients} connection(s): median {statistics.median(rates):,.0f} "
                f"pairs/s (runs: {', '.join(f'{r:,.0f}' for r in rates)})",
                flush=True,
            )
        single = f"{logins.users[0]},{logins.ips[0]}\n".encode()
        runs = [latency(port, single, 100.0, arguments.seconds) for _ in range(arguments.repeat)]
        p50 = [statistics.quantiles(r, n=100)[49] for r in runs]
        p99 = [statistics.quantiles(r, n=100)[98] for r in runs]
        print(
            f"single-pair requests at 100 req/s: p50 median {statistics.median(p50):.2f} ms "
            f"(runs: {', '.join(f'{v:.2f}' for v in p50)}), p99 median {statistics.median(p99):.2f} ms "
            f"(runs: {', '.join(f'{v:.2f}' for v in p99)})",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
