"""Scans and sweeps (issue 27, item 4): one workload's burst of first connections is one finding listing them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pipeline.samplelake.labels import judge_findings
from scripts.detect.detector import Detector
from scripts.detect.memory import Pairs
from scripts.detect.settings import DAY_MS, DetectorSettings
from scripts.detect.sweep import SWEEP_MIN_ADDRESSES, find_sweeps
from scripts.monitor.findings import SWEEP_ADDRESSES, SWEEP_TITLE, Finding, ocsf_rows
from scripts.monitor.flagging import FleetContext, Knowledge, findings_of
from scripts.monitor.ledger import NoLedger, SqliteLedger

ACCOUNT = "123456789012"
START_MS = 1_649_030_400_000
SCANNER = f"{ACCOUNT}/i-000"


def test_a_sweep_is_five_flagged_first_connections_of_one_workload_with_their_neighbours() -> None:
    """Five flagged client pairs of one workload are a sweep; its unflagged first connections into the same /16s
    join it, others do not; its server side, and another workload's four, are no part of any sweep."""
    rows = [(f"{SCANNER}#client:admin", f"10.9.{n}.7", True, True) for n in range(5)]
    rows += [
        (f"{SCANNER}#client:db", "10.9.3.200", False, True),  # a neighbour of the flagged ones: joins
        (f"{SCANNER}#client:web", "52.216.1.1", False, True),  # another network: not part of it
        (f"{SCANNER}#client:admin", "10.9.4.8", False, False),  # not a first connection
        (f"{SCANNER}#server:web", "10.9.0.9", True, True),  # its server side: clients reaching it
    ]
    rows += [(f"{ACCOUNT}/i-001#client:admin", f"10.8.{n}.7", True, True) for n in range(4)]
    rows += [(f"{ACCOUNT}/i-002#server:web", f"73.0.{n}.7", True, True) for n in range(6)]
    entities = [r[0] for r in rows]
    ips = [r[1] for r in rows]
    flagged = np.asarray([r[2] for r in rows])
    novel = np.asarray([r[3] for r in rows])
    [sweep] = find_sweeps(entities, ips, flagged, novel)
    assert sweep.workload == SCANNER and sweep.rows == [0, 1, 2, 3, 4, 5]
    assert SWEEP_MIN_ADDRESSES == 5
    assert find_sweeps(entities[1:], ips[1:], flagged[1:], novel[1:]) == []  # four flagged addresses are not one


def _detector() -> Detector:
    """Six app servers, each reaching its own databases and SSH hosts in 10.1.<n>.0/24 for seven days."""
    rows = [
        (f"{ACCOUNT}/i-{n:03d}#client:{role}", f"10.1.{n}.{k}", START_MS + day * DAY_MS + k)
        for n in range(6)
        for role in ("admin", "db")
        for day in range(7)
        for k in range(20)
    ]
    pairs = Pairs.of([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    return Detector.fit(pairs, None, START_MS + 6 * DAY_MS, DetectorSettings(use_model=False))


def test_a_scan_is_one_high_finding_listing_its_addresses_in_order_and_the_judge_counts_each(tmp_path: Path) -> None:
    """The scanner probes eight addresses of other VPCs on SSH and a database port: one High finding for the
    workload, at its first address, listing all eight in the order they were met; an unrelated flagged pair of
    another workload stays a finding of its own."""
    detector = _detector()
    targets = [f"10.{20 + n % 3}.{n}.9" for n in range(8)]
    pairs = [(f"{SCANNER}#client:{'admin' if n % 2 else 'db'}", ip) for n, ip in enumerate(targets)]
    pairs += [(f"{ACCOUNT}/i-003#client:admin", "10.40.0.1")]
    met_at = {ip: START_MS + 7 * DAY_MS + 1000 * (8 - n) for n, ip in enumerate(targets)}  # met last to first

    def make(entity: str, ip: str, value: float) -> Any:
        return Finding(entity, ip, value, 0.0, "v1", "s3://lake/o", met_at.get(ip, START_MS + 7 * DAY_MS), ACCOUNT, "r")

    fleet = FleetContext("20220411", ACCOUNT, SqliteLedger(tmp_path / "state.sqlite"))
    scores = [-float(n) for n in range(len(pairs))]
    findings = findings_of(pairs, scores, make, Knowledge(detector.memory, detector), 0.0, fleet)
    assert [(f.entity, f.ip) for f in findings] == [
        (f"{ACCOUNT}/i-003#client:admin", "10.40.0.1"),
        (SCANNER, targets[-1]),
    ]
    single, sweep = findings
    assert (single.severity, single.sweep, single.title) == ("Medium", False, "Unusual network peer for workload")
    assert (sweep.severity, sweep.sweep, sweep.title) == ("High", True, SWEEP_TITLE)
    assert sweep.evidence[SWEEP_ADDRESSES] == ",".join(reversed(targets))
    assert sweep.evidence["sweep_flagged"] == "8" and sweep.evidence["sweep_roles"] == "client:admin,client:db"
    assert sweep.evidence["sweep_owners"] == ""  # the detector knows no owners
    assert "Owners:" not in sweep.why
    assert sweep.score == -7.0  # the lowest of its pairs'
    assert sweep.why.startswith(f"i-000 met 8 addresses for the first time in one object ({targets[-1]}, ")
    assert "a scan or a sweep looks like this" in sweep.why
    [row] = ocsf_rows([sweep], 0)[:1]
    assert row["finding_info"]["title"] == SWEEP_TITLE and row["severity"] == "High"
    assert row["resources"] == [{"uid": "i-000", "type": "AWS EC2 Instance"}]
    judged = judge_findings(findings, {(SCANNER, ip) for ip in targets})
    assert judged.recall == 1.0 and len(judged.alerts) == 9


def test_the_held_out_day_counts_a_sweep_as_one_alert_as_the_monitor_reports_it() -> None:
    """The gate's alert count: one workload's eight flagged first connections are one alert (the monitor writes one
    finding), another's single flagged pair is one, a server's six flagged clients are six (a server never sweeps)."""
    from scripts.detect.held_out_day import detection_report
    from scripts.handoff.evalset import NORMAL, EvalSet

    rows = [(f"{SCANNER}#client:admin", f"10.20.{n}.9") for n in range(8)]
    rows += [(f"{ACCOUNT}/i-001#client:db", "10.30.0.1")]
    rows += [(f"{ACCOUNT}/i-002#server:web", f"73.0.{n}.7") for n in range(6)]
    count = len(rows)
    data = EvalSet(
        np.asarray([e for e, _ in rows], dtype=object),
        np.asarray([ip for _, ip in rows], dtype=object),
        np.zeros(count, dtype=np.int64),
        np.full(count, NORMAL, dtype=object),
        np.ones(count, dtype=bool),
        np.zeros(count),
        np.zeros(count, dtype=bool),
    )
    detector = _detector()
    flagged = np.ones(count, dtype=bool)
    report = detection_report(
        data, flagged, np.zeros(count), np.zeros(count, dtype=np.int64), detector, detector.settings, "20220411"
    )
    assert (report.alerts, report.sweeps) == (8, 1)
    fewer = flagged.copy()
    fewer[:4] = False  # four left: no sweep, each its own alert
    report = detection_report(
        data, fewer, np.zeros(count), np.zeros(count, dtype=np.int64), detector, detector.settings, "20220411"
    )
    assert (report.alerts, report.sweeps) == (11, 0)


def test_a_sweep_names_who_owns_its_addresses_most_first() -> None:
    """A burst into one provider reads differently from one across a network: the owners of the swept addresses,
    counted, most first (ties by name), in the finding's why and evidence; none without a network table."""
    import ipaddress

    from scripts.detect.networks import AnnouncedRange, NetworkTable
    from scripts.detect.sweep import owners_in_words

    assert owners_in_words(["B", None, "A", "B", None]) == "B 2, no known owner 2, A 1"
    network = ipaddress.ip_network("34.64.0.0/10")
    table = NetworkTable.of_ranges(
        [AnnouncedRange.of_network(int(network.network_address), 10, "GOOGLE-CLOUD-PLATFORM", ipv4=True)], "test"
    )
    rows = [(f"{SCANNER}#client:web", f"1.1.{n}.1", START_MS + day * DAY_MS + n) for day in range(7) for n in range(20)]
    history = Pairs.of([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    detector = Detector.fit(history, None, START_MS + 6 * DAY_MS, DetectorSettings(use_model=False), table)
    targets = [f"34.64.{n}.9" for n in range(6)] + ["185.220.101.7"]
    pairs = [(f"{SCANNER}#client:web", ip) for ip in targets]

    def make(entity: str, ip: str, value: float) -> Any:
        return Finding(entity, ip, value, 0.0, "v1", "s3://lake/o", START_MS + 7 * DAY_MS, ACCOUNT, "r")

    fleet = FleetContext("20220411", ACCOUNT, NoLedger())
    [sweep] = findings_of(pairs, [0.0] * len(pairs), make, Knowledge(detector.memory, detector), 0.0, fleet)
    owners = "Google (GOOGLE-CLOUD-PLATFORM, cloud) 6, no known owner 1"
    assert sweep.evidence["sweep_owners"] == owners
    assert sweep.why.endswith(f"a scan or a sweep looks like this. Owners: {owners}.")
