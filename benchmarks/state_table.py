"""The state table's cost on an object full of new addresses: one workload meeting ~97k addresses it never met, in
2M flow records (a scan, a crawler, a misbehaving client), handled by the Lambda handler's logic end to end.

    python -m benchmarks.state_table [--rows 2000000] [--addresses 97000] [--state sqlite|none] [--repeat 3]

Reports the handler's seconds for the object (median of --repeat, each on a fresh SQLite state table) and the
findings it wrote. `none` is the baseline: no state table, so the difference is the state table's own cost. Peak RSS
covers the whole process (lake generation and model training included), so it is an upper bound for the handler.
DynamoDB's request count per object is fixed by the batching and asserted by tests/test_monitor.py: ceil(findings /
100) TransactWriteItems for the claims (one more per transaction holding a refused claim), ceil(addresses / 100)
TransactWriteItems and as many BatchGetItem for the first meetings. moto could not stand in for DynamoDB at this
size (in process it also intercepts the inference server's calls; as a server its TransactWriteItems failed with
"dictionary changed size during iteration").
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import statistics
import tempfile
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from benchmarks.serve import _train_model
from pipeline.cli.monitor_cmd import lake_objects, sqs_event
from pipeline.samplelake.writer import GenerationOptions, generate_lake
from scripts.detect.artifact import detector_bytes
from scripts.detect.detector import Detector
from scripts.detect.memory import Pairs
from scripts.detect.settings import DetectorSettings
from scripts.handoff.artifacts import ArtifactLayout, endpoint_config_name
from scripts.handoff.manifest import RunManifest
from scripts.ipinsights.serve import start_server
from scripts.monitor.events import parse_batch
from scripts.monitor.handler import handle_messages
from scripts.monitor.ledger import FindingLedger, NoLedger, SqliteLedger
from scripts.monitor.resources import MonitorResources, folder_resources
from scripts.monitor.settings import Settings
from scripts.ocsf.layout import parse_object_key
from scripts.ocsf.schemas import Source
from scripts.pairs.arrow_engine import extract
from scripts.pairs.mapping import mapping

ARTIFACTS = "s3://artifacts/bench"
END_DAY = dt.date(2026, 11, 28)
DAY_MS = 86_400_000
STORM_NAME = "0" * 32 + ".gz.parquet"


def _day_ms(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(), dt.UTC).timestamp() * 1000)


def _history_pairs(home: Path) -> Pairs:
    """Every pair of the lake's days before END_DAY, extracted as the monitor extracts them."""
    entities: list[str] = []
    ips: list[str] = []
    times: list[int] = []
    rule_of = mapping("role").rule
    for bucket, key in lake_objects(home, None):
        location = parse_object_key(key)
        if location is None or location.version is None or location.event_day >= END_DAY.strftime("%Y%m%d"):
            continue
        source = Source(location.source)
        table = pq.read_table(home / "s3" / bucket / key)
        pairs = extract(table, source, location.version, rule_of(source)).pairs
        entities += pairs["entity"].to_pylist()
        ips += pairs["ip"].to_pylist()
        times += pairs["time"].to_pylist()
    return Pairs.of(entities, ips, times)


def _storm_object(home: Path, rows: int, addresses: int) -> tuple[str, str]:
    """One VPC flow object of END_DAY whose outbound records, all from the busiest workload, go to `addresses` new
    public addresses (each address from one template record, so one pair each)."""
    day = END_DAY.strftime("%Y%m%d")
    flows = [(b, k) for b, k in lake_objects(home, day) if "/VPC_FLOW/" in k]
    template = pa.concat_tables(pq.read_table(home / "s3" / b / k) for b, k in flows[:4])
    outbound = template.filter(pc.equal(pc.struct_field(template["connection_info"], "direction"), "Outbound"))
    interfaces = pc.struct_field(outbound["src_endpoint"], "interface_uid")
    busiest = Counter(interfaces.to_pylist()).most_common(1)[0][0]
    sample = outbound.filter(pc.equal(interfaces, busiest))
    address_of_row = np.arange(rows, dtype=np.int64) * addresses // rows
    storm = sample.take(pa.array(address_of_row % sample.num_rows))
    ips = pa.array([f"45.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}" for i in address_of_row.tolist()])
    destination = storm["dst_endpoint"].combine_chunks()
    fields = [destination.field(i) if f.name != "ip" else ips for i, f in enumerate(destination.type)]
    storm = storm.set_column(
        storm.schema.get_field_index("dst_endpoint"),
        "dst_endpoint",
        pa.StructArray.from_arrays(fields, fields=list(destination.type)),
    )
    bucket, key = flows[0]
    key = key.rsplit("/", 1)[0] + "/" + STORM_NAME
    pq.write_table(storm.cast(template.schema), home / "s3" / bucket / key, compression="gzip")
    return bucket, key


def _ledger(state: str, folder: Path) -> FindingLedger:
    return SqliteLedger(folder / "state.sqlite") if state == "sqlite" else NoLedger()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--addresses", type=int, default=97_000)
    parser.add_argument("--state", choices=["sqlite", "none"], default="sqlite")
    parser.add_argument("--repeat", type=int, default=3)
    arguments = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        generate_lake(
            GenerationOptions(root=home, days=8, events_per_day=40_000, end_day=END_DAY, anomalies_per_kind=0)
        )
        history = _history_pairs(home)
        detector = Detector.fit(history, None, _day_ms(END_DAY) - DAY_MS, DetectorSettings(use_model=False))
        layout = ArtifactLayout(ARTIFACTS)
        detector_uri = f"{ARTIFACTS}/runs/bench/detector/detector.npz"
        for uri, body in (
            (detector_uri, detector_bytes(detector, {"benchmark": True})),
            (
                layout.manifest("bench"),
                RunManifest(threshold=-5.0, detector_uri=detector_uri, mapping="role", algorithm="builtin")
                .dumps()
                .encode(),
            ),
        ):
            path = home / "s3" / uri.removeprefix("s3://")
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
        storm = _storm_object(home, arguments.rows, arguments.addresses)
        server, _ = start_server(_train_model(home / "job"), "127.0.0.1", 0, "bench")
        settings = Settings(endpoint="bench", artifact_uri=ARTIFACTS)
        base = folder_resources(settings, home / "s3", server.url, lambda: endpoint_config_name("bench", "bench"))
        seconds, findings = [], []
        for run in range(arguments.repeat):
            state_folder = home / f"state-{run}"
            state_folder.mkdir()
            resources: MonitorResources = replace(base, ledger=_ledger(arguments.state, state_folder))
            began = time.perf_counter()
            failures, reports = handle_messages(parse_batch(sqs_event([storm])), resources)
            seconds.append(time.perf_counter() - began)
            if failures:
                message = f"the storm object's message failed: {failures}"
                raise RuntimeError(message)
            findings.append(len(reports[0].findings))
        server.shutdown()
        report = reports[0]
        print(json.dumps({"rows": report.rows, "pairs": report.pairs, "findings": findings, "state": arguments.state}))
        print(
            f"handler on one object: median {statistics.median(seconds):.1f} s "
            f"(min {min(seconds):.1f}, max {max(seconds):.1f}) over {len(seconds)} runs"
        )
        print(f"peak RSS of the process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
