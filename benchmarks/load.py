"""Many clients at once against the inference server (its own process, loopback): errors, latency, throughput.

    python -m benchmarks.load [--clients 200] [--requests 5] [--repeat 3]
Each client opens its own connection at the same moment (a barrier), then sends `--requests` 1,000-row text/csv
requests on it. Errors are any refused or reset connection, timeout or non-200 answer. Baseline: one client sending
the same requests back to back; the ratio says what 200 concurrent clients cost in throughput.
"""

from __future__ import annotations

import argparse
import http.client
import statistics
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.logins import simulate_logins
from benchmarks.serve import _train_model, serving


def one_run(port: int, body: bytes, clients: int, requests: int) -> tuple[list[float], int, float]:
    """(latencies in ms, errors, pairs per second) of one burst."""
    barrier = threading.Barrier(clients)
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def client() -> None:
        barrier.wait()
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            for _ in range(requests):
                sent = time.perf_counter()
                connection.request("POST", "/invocations", body=body, headers={"Content-Type": "text/csv"})
                response = connection.getresponse()
                response.read()
                took = (time.perf_counter() - sent) * 1000
                with lock:
                    if response.status == 200:
                        latencies.append(took)
                    else:
                        errors.append(f"HTTP {response.status}")
            connection.close()
        except OSError as error:
            with lock:
                errors.append(type(error).__name__)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return latencies, len(errors), len(latencies) * 1000 / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--requests", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder, serving(_train_model(Path(folder))) as port:
        logins = simulate_logins(users=5000, events=1000, seed=9)
        body = "".join(f"{u},{ip}\n" for u, ip in zip(logins.users, logins.ips, strict=True)).encode()
        one_run(port, body, 1, 5)  # warm-up
        total = arguments.clients * arguments.requests
        baseline = [one_run(port, body, 1, total // 4)[2] for _ in range(arguments.repeat)]
        runs = [one_run(port, body, arguments.clients, arguments.requests) for _ in range(arguments.repeat)]
        p50 = [statistics.quantiles(latencies, n=100)[49] for latencies, _, _ in runs]
        p99 = [statistics.quantiles(latencies, n=100)[98] for latencies, _, _ in runs]
        rates = [rate for _, _, rate in runs]
        print(
            f"{arguments.clients} clients x {arguments.requests} requests of 1,000 rows: errors per run "
            f"{[errors for _, errors, _ in runs]}; p50 median {statistics.median(p50):,.0f} ms (runs: "
            f"{', '.join(f'{v:,.0f}' for v in p50)}), p99 median {statistics.median(p99):,.0f} ms (runs: "
            f"{', '.join(f'{v:,.0f}' for v in p99)}); median {statistics.median(rates):,.0f} pairs/s (runs: "
            f"{', '.join(f'{v:,.0f}' for v in rates)})"
        )
        print(
            f"baseline, 1 client back to back: median {statistics.median(baseline):,.0f} pairs/s; "
            f"{arguments.clients} clients reach {statistics.median(rates) / statistics.median(baseline):.2f}x"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
