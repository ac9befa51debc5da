"""Monitoring throughput and latency locally: the Lambda handler over generated lake objects, the real inference
server on loopback, local S3 in a folder.

    python -m benchmarks.monitor [--events-per-day 1000000] [--repeat 3]
Reports flow/DNS records per second of handler time per 10-message SQS batch, and the object-to-finding latency
(handler start to the finding file written) per object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.serve import _train_model
from pipeline.cli.monitor_cmd import lake_objects, sqs_event
from pipeline.samplelake.writer import GenerationOptions, generate_lake
from scripts.handoff.artifacts import ArtifactLayout, endpoint_config_name
from scripts.handoff.manifest import RunManifest
from scripts.ipinsights.serve import start_server
from scripts.monitor.events import ObjectRef, parse_batch
from scripts.monitor.handler import handle_messages, process_object, write_findings
from scripts.monitor.resources import folder_resources
from scripts.monitor.settings import Settings

ARTIFACTS = "s3://artifacts/bench"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events-per-day", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        generate_lake(
            GenerationOptions(
                root=home,
                days=2,
                events_per_day=arguments.events_per_day,
                end_day=dt.date(2026, 11, 28),
                anomalies_per_kind=1,
            )
        )
        server, _ = start_server(_train_model(home / "job"), "127.0.0.1", 0, "bench")
        manifest = RunManifest(threshold=-5.0, detector_uri=None, mapping="role", algorithm="builtin")
        manifest_path = home / "s3" / ArtifactLayout(ARTIFACTS).manifest("bench").removeprefix("s3://")
        manifest_path.parent.mkdir(parents=True, exist_ok=True)
        manifest_path.write_text(manifest.dumps())
        settings = Settings(endpoint="bench", artifact_uri=ARTIFACTS)
        resources = folder_resources(settings, home / "s3", server.url, lambda: endpoint_config_name("bench", "bench"))
        deployed = resources.deployment.current()
        objects = lake_objects(home, "20261128")
        rates, latencies = [], []
        for _ in range(arguments.repeat):
            for start in range(0, len(objects), 10):
                batch = objects[start : start + 10]
                began = time.perf_counter()
                _, reports = handle_messages(parse_batch(sqs_event(batch)), resources)
                rates.append(sum(r.rows for r in reports) / (time.perf_counter() - began))
            for bucket, key in objects[:12]:
                began = time.perf_counter()
                report = process_object(ObjectRef(bucket, key), resources, deployed)
                write_findings(report, settings, resources.objects, bucket)
                latencies.append((time.perf_counter() - began) * 1000)
        server.shutdown()
        print(json.dumps({"objects": len(objects), "batches_measured": len(rates)}))
        print(
            f"handler: median {statistics.median(rates):,.0f} records/s per 10-message invocation "
            f"(min {min(rates):,.0f}, max {max(rates):,.0f})"
        )
        print(
            f"object to finding: median {statistics.median(latencies):.0f} ms, p90 "
            f"{statistics.quantiles(latencies, n=10)[8]:.0f} ms over {len(latencies)} objects"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
