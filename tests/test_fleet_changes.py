"""Fleet-wide changes judged with everything known (issue 27): the network, the owner, and the instance's own link."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from scripts.addresses import on_link
from scripts.detect.decision import decide
from scripts.detect.detector import Detector
from scripts.detect.fleet import fleet_change, fleet_severity
from scripts.detect.held_out_day import detection_report, fleet_changes
from scripts.detect.history import History
from scripts.detect.memory import Pairs
from scripts.detect.networks import AnnouncedRange, NetworkTable
from scripts.detect.settings import DAY_MS, DetectorSettings
from scripts.handoff.evalset import NORMAL, EvalSet
from scripts.monitor.findings import Finding
from scripts.monitor.flagging import FleetContext, Knowledge, findings_of
from scripts.monitor.ledger import SqliteLedger

ACCOUNT = "123456789012"
START_MS = 1_649_030_400_000  # 2022-04-04
DAY = "20220411"
AMAZON = "Amazon (AMAZON-02, cloud)"


def _range(cidr: str, name: str) -> AnnouncedRange:
    network = ipaddress.ip_network(cidr)
    return AnnouncedRange.of_network(int(network.network_address), network.prefixlen, name, ipv4=True)


def _table() -> NetworkTable:
    """S3's network and CloudFront's, both Amazon's; a Google network; 185.220.101.0/24 is in no announced range."""
    ranges = [
        _range("52.216.0.0/15", "AMAZON-02"),
        _range("13.224.0.0/14", "AMAZON-02"),
        _range("34.64.0.0/10", "GOOGLE-CLOUD-PLATFORM"),
    ]
    return NetworkTable.of_ranges(ranges, "test ranges")


def _workload(n: int) -> str:
    return f"{ACCOUNT}/i-{n:03d}#client:web"


def _detector(networks: NetworkTable | None) -> Detector:
    """Six app servers, each reaching only its own S3 addresses (52.216.<n>.0/24) for seven days: Amazon is an owner
    every one of them knows; nothing of 13.224.0.0/14 or of Google was ever reached."""
    rows = [
        (_workload(n), f"52.216.{n}.{k}", START_MS + day * DAY_MS + k)
        for n in range(6)
        for day in range(7)
        for k in range(30)
    ]
    pairs = Pairs.of([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    return Detector.fit(pairs, None, START_MS + 6 * DAY_MS, DetectorSettings(use_model=False), networks)


def _grouped(detector: Detector, ips: list[str], tmp_path: Path) -> dict[str, Finding]:
    """One object in which all six workloads meet each of `ips` for the first time: the findings by address."""
    fleet = FleetContext(DAY, ACCOUNT, SqliteLedger(tmp_path / "state.sqlite"))

    def make(entity: str, ip: str, value: float) -> Any:
        return Finding(entity, ip, value, 0.0, "v1", "s3://lake/o", START_MS + 7 * DAY_MS, ACCOUNT, "us-east-1")

    pairs = [(_workload(n), ip) for ip in ips for n in range(6)]
    findings = findings_of(pairs, [0.0] * len(pairs), make, Knowledge(detector.memory, detector), 0.0, fleet)
    assert all(f.entity == f"{ACCOUNT}/*" for f in findings), [f.entity for f in findings]
    return {f.ip: f for f in findings}


def test_a_rollout_to_a_provider_the_fleet_already_uses_is_low_and_an_unknown_owner_stays_high(tmp_path: Path) -> None:
    """A SaaS served from CloudFront, new to the fleet down to /8 but Amazon's, whom every workload talks to: Low,
    the owner named. Google, never talked to, and an address with no known owner: High, each saying why."""
    found = _grouped(_detector(_table()), ["13.224.9.9", "34.64.1.1", "185.220.101.7"], tmp_path)
    rollout, google, unowned = found["13.224.9.9"], found["34.64.1.1"], found["185.220.101.7"]
    assert (rollout.severity, google.severity, unowned.severity) == ("Low", "High", "High")
    assert rollout.evidence["network_owner"] == AMAZON
    assert rollout.evidence["fleet_knew_owner"] == "true" and rollout.evidence["fleet_knew_network"] == "false"
    assert f"its owner, {AMAZON}, is one they already talk to" in rollout.why
    assert google.evidence["network_owner"] == "Google (GOOGLE-CLOUD-PLATFORM, cloud)"
    assert google.evidence["fleet_knew_owner"] == "false"
    assert "its owner, Google (GOOGLE-CLOUD-PLATFORM, cloud), is new to them too" in google.why
    assert unowned.evidence["network_owner"] == "" and "its owner is not known" in unowned.why
    assert "command-and-control" in google.why and "command-and-control" in unowned.why


def test_without_a_network_table_the_same_rollout_is_high(tmp_path: Path) -> None:
    """The owner is what makes the rollout Low: the detector fitted without owners judges it by its network alone."""
    rollout = _grouped(_detector(None), ["13.224.9.9"], tmp_path)["13.224.9.9"]
    assert rollout.severity == "High"
    assert rollout.evidence["network_owner"] == "" and rollout.evidence["fleet_knew_owner"] == "false"


def test_the_verdict_of_a_fleet_change_from_its_network_and_its_owner() -> None:
    assert fleet_severity(knew_network=True, knew_owner=False) == "Low"
    assert fleet_severity(knew_network=False, knew_owner=True) == "Low"
    assert fleet_severity(knew_network=True, knew_owner=True) == "Low"
    assert fleet_severity(knew_network=False, knew_owner=False) == "High"
    workloads = [_workload(n) for n in range(5)]
    # an owner known to the fleet but not named (no table) cannot vouch for the address
    unnamed = fleet_change(ACCOUNT, "13.224.9.9", DAY, workloads, 5, None, owner=None, owner_known=True)
    assert (unnamed.severity, unnamed.fleet_knew_owner) == ("High", False)
    named = fleet_change(ACCOUNT, "13.224.9.9", DAY, workloads, 5, None, owner=AMAZON, owner_known=True)
    assert (named.severity, named.fleet_knew_owner, named.owner) == ("Low", True, AMAZON)
    assert named.why == (
        f"5 workloads met 13.224.9.9 for the first time on {DAY} (i-000, i-001, i-002, i-003, i-004); its network is "
        f"new to the account's workloads, but its owner, {AMAZON}, is one they already talk to: likely a service of "
        "that provider rolled out."
    )


def _normal_day(entities: list[str], ips: list[str]) -> EvalSet:
    """A held-out day of normal pairs, none of them scored by the model."""
    count = len(ips)
    return EvalSet(
        np.asarray(entities, dtype=object),
        np.asarray(ips, dtype=object),
        np.zeros(count, dtype=np.int64),
        np.full(count, NORMAL, dtype=object),
        np.ones(count, dtype=bool),
        np.zeros(count),
        np.zeros(count, dtype=bool),
    )


def test_the_held_out_days_report_groups_three_workloads_meeting_a_known_owner() -> None:
    """The gate's figures: three workloads meeting CloudFront's address are one low-severity fleet change and no
    alert; three meeting Google's are neither (three pairs the detector judges one by one)."""
    detector = _detector(_table())
    entities = [_workload(n) for n in range(3)] * 2
    ips = ["13.224.9.9"] * 3 + ["34.64.1.1"] * 3
    scored = detector.score(entities, ips, None)
    fleet = np.full(6, 3, dtype=np.int64)
    none = np.zeros(6, dtype=bool)
    report = detection_report(
        _normal_day(entities, ips), none, np.zeros(6), fleet, detector, detector.settings, DAY, scored["owner_known"]
    )
    assert (report.fleet_changes, report.fleet_changes_in_unknown_networks, report.alerts) == (1, 0, 0)


def test_the_held_out_days_fleet_changes_count_a_known_owner_as_known() -> None:
    """The gate's alert count uses the same verdict: a fleet change to a known owner is no alert on the held-out day."""
    detector = _detector(_table())
    ips = ["13.224.9.9"] * 6 + ["34.64.1.1"] * 6
    entities = [_workload(n) for n in range(6)] * 2
    count = len(ips)
    data = _normal_day(entities, ips)
    scored = detector.score(entities, ips, None)
    changed = np.ones(count, dtype=bool)
    assert scored["owner_known"].tolist() == [True] * 6 + [False] * 6
    known = fleet_changes(data, changed, detector, scored["owner_known"])
    assert known == {(ACCOUNT, "13.224.9.9"): True, (ACCOUNT, "34.64.1.1"): False}
    assert fleet_changes(data, changed, detector) == {(ACCOUNT, "13.224.9.9"): False, (ACCOUNT, "34.64.1.1"): False}


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("169.254.169.123", True),  # Amazon Time Sync
        ("169.254.169.254", True),  # the instance metadata service
        ("169.254.170.2", True),  # ECS task metadata
        ("fd00:ec2::123", True),  # Time Sync over IPv6 on Nitro
        ("fe80::1", True),
        ("169.255.0.1", False),
        ("10.0.0.2", False),  # the VPC's resolver at base+2 is a VPC address, judged as any other
        ("fd00:ec3::1", False),
        ("8.8.8.8", False),
        ("not-an-address", False),
    ],
)
def test_the_instances_own_link(address: str, expected: bool) -> None:
    assert on_link([address]).tolist() == [expected]


def test_an_address_on_the_instances_own_link_is_never_judged() -> None:
    """An established workload's first query to Amazon Time Sync (a new role, client:ntp) and its first packet to
    the metadata service are not alerts, and neither counts towards a fleet change; a new role elsewhere still is."""
    detector = _detector(None)
    entities = [f"{ACCOUNT}/i-000#client:ntp", f"{ACCOUNT}/i-000#client:web", f"{ACCOUNT}/i-001#client:admin"]
    ips = ["169.254.169.123", "169.254.169.254", "198.51.100.7"]
    scored = detector.score(entities, ips, None)
    assert scored["on_link"].tolist() == [True, True, False]
    assert scored["novelty"].tolist()[:2] == [0.0, 0.0]
    assert scored["new_role"].tolist() == [False, False, True]
    assert scored["flagged"].tolist() == [False, False, True]
    many = [_workload(n) for n in range(6)]
    fleet = detector.score(many, ["169.254.169.123"] * 6, None)
    assert not fleet["fleet_change"].any() and not fleet["flagged"].any()


def test_the_fleets_memory_is_what_the_network_verdict_reads() -> None:
    """The account's nearest known address to a new one, as the grouped finding reads it: 52.216.0.0/15 is its
    network; 13.224.9.9 shares no more than /0-/7 with anything it reached."""
    detector = _detector(_table())
    nearest = detector.memory.fleet_nearest([ACCOUNT, ACCOUNT], ["52.217.3.3", "13.224.9.9"])
    assert nearest is not None
    assert int(nearest.shared_bits[0]) == 15 and int(nearest.shared_bits[1]) < 8
    assert isinstance(detector.memory.accounts, History)


def test_one_workload_that_knows_the_owner_is_enough_for_the_account(tmp_path: Path) -> None:
    """Three workloads meet the CloudFront address as web clients (their role knows Amazon), three in a role they
    never had (whose history knows nobody): the account's fleet knows the owner, the grouped finding is Low. The
    three new roles are not part of it: only three workloads took that role towards the address, fewer than the five
    an owner they never talked to needs, so each stands alone."""
    detector = _detector(_table())
    fleet = FleetContext(DAY, ACCOUNT, SqliteLedger(tmp_path / "state.sqlite"))

    def make(entity: str, ip: str, value: float) -> Any:
        return Finding(entity, ip, value, 0.0, "v1", "s3://lake/o", START_MS + 7 * DAY_MS, ACCOUNT, "us-east-1")

    pairs = [(_workload(n), "13.224.9.9") for n in range(3)]
    pairs += [(f"{ACCOUNT}/i-{n:03d}#client:other", "13.224.9.9") for n in range(3, 6)]
    scored = detector.score([e for e, _ in pairs], [ip for _, ip in pairs], None)
    assert scored["owner_known"].tolist() == [True] * 3 + [False] * 3
    findings = findings_of(pairs, [0.0] * 6, make, Knowledge(detector.memory, detector), 0.0, fleet)
    grouped = [f for f in findings if f.entity == f"{ACCOUNT}/*"]
    assert [(f.severity, f.evidence["fleet_knew_owner"], f.evidence["fleet_workloads"]) for f in grouped] == [
        ("Low", "true", "6")
    ]
    alone = sorted((f.entity, f.severity, f.evidence["new_role"]) for f in findings if f not in grouped)
    assert alone == [(f"{ACCOUNT}/i-{n:03d}#client:other", "Medium", "true") for n in range(3, 6)]


def test_a_new_role_towards_an_address_the_fleet_met_at_once_is_not_hidden_in_the_fleet_change(tmp_path: Path) -> None:
    """An instance launched today is met by five web clients of the account at once (a Low fleet change: they know
    its network); one server also answers it on SSH, a role it never had: that pair stands alone, Medium. Five
    servers taking that new role towards it together would be part of the change."""
    detector = _detector(_table())

    def make(entity: str, ip: str, value: float) -> Any:
        return Finding(entity, ip, value, 0.0, "v1", "s3://lake/o", START_MS + 7 * DAY_MS, ACCOUNT, "us-east-1")

    launched = "52.217.200.1"
    pairs = [(_workload(n), launched) for n in range(5)] + [(f"{ACCOUNT}/i-005#server:admin", launched)]
    fleet = FleetContext(DAY, ACCOUNT, SqliteLedger(tmp_path / "one.sqlite"))
    findings = findings_of(pairs, [0.0] * 6, make, Knowledge(detector.memory, detector), 0.0, fleet)
    assert sorted((f.entity, f.severity) for f in findings) == [
        (f"{ACCOUNT}/*", "Low"),
        (f"{ACCOUNT}/i-005#server:admin", "Medium"),
    ]
    together = [(f"{ACCOUNT}/i-{n:03d}#server:admin", launched) for n in range(6)]
    fleet = FleetContext(DAY, ACCOUNT, SqliteLedger(tmp_path / "six.sqlite"))
    findings = findings_of(together, [0.0] * 6, make, Knowledge(detector.memory, detector), 0.0, fleet)
    assert [f.entity for f in findings] == [f"{ACCOUNT}/*"]


def test_the_instances_own_link_is_left_out_of_the_novelty_calibration() -> None:
    """A workload that meets a new link-local address every day (a metadata endpoint of each new task) would teach
    its calibration that very novel peers are usual for it; those pairs are no peers and are not observed."""
    rows = [(_workload(0), f"52.216.0.{k}", START_MS + day * DAY_MS + k) for day in range(7) for k in range(20)]
    rows += [
        (_workload(0), f"169.254.{day}.{k}", START_MS + day * DAY_MS + 100 + k) for day in range(7) for k in range(5)
    ]
    pairs = Pairs.of([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    detector = Detector.fit(pairs, None, START_MS + 6 * DAY_MS, DetectorSettings(use_model=False))
    observed = detector.novelty_table.by_entity[_workload(0)]
    assert len(observed) > 0 and float(observed.max()) == 0.0  # its S3 addresses, each day already known


def test_three_workloads_meeting_a_known_owners_new_address_is_a_fleet_change_and_fewer_or_unknown_are_not() -> None:
    """The decision's rule: from known_owner_fleet_workloads (3) on, an address of an owner the workloads talk to is
    a fleet change; an unknown owner's needs fleet_change_workloads (5); the rule can be switched off."""
    settings = DetectorSettings()
    zeros = np.zeros(6)
    none = np.zeros(6, dtype=bool)
    fleet = np.asarray([2, 3, 4, 3, 4, 5])
    owner_known = np.asarray([True, True, True, False, False, False])
    decision = decide(zeros, zeros, none, none, fleet, settings, owner_known)
    assert decision.fleet_change.tolist() == [False, True, True, False, False, True]
    off = decide(zeros, zeros, none, none, fleet, DetectorSettings(known_owner_fleet_workloads=0), owner_known)
    assert off.fleet_change.tolist() == [False, False, False, False, False, True]
    assert decide(zeros, zeros, none, none, fleet, settings).fleet_change.tolist() == [False] * 5 + [True]


def test_three_workloads_meeting_a_known_providers_new_address_in_one_object_is_one_low_finding(tmp_path: Path) -> None:
    """A rollout's first object holds three of the six web clients meeting the CloudFront address: one Low grouped
    finding, none per workload. Three meeting Google's address (an owner they never talked to) are three findings,
    and so are two meeting the CloudFront one."""
    detector = _detector(_table())
    fleet = FleetContext(DAY, ACCOUNT, SqliteLedger(tmp_path / "state.sqlite"))

    def make(entity: str, ip: str, value: float) -> Any:
        return Finding(entity, ip, value, 0.0, "v1", "s3://lake/o", START_MS + 7 * DAY_MS, ACCOUNT, "us-east-1")

    knowledge = Knowledge(detector.memory, detector)
    three = [(_workload(n), "13.224.9.9") for n in range(3)]
    [grouped] = findings_of(three, [0.0] * 3, make, knowledge, 0.0, fleet)
    assert (grouped.entity, grouped.severity, grouped.evidence["workloads"]) == (
        f"{ACCOUNT}/*",
        "Low",
        "i-000,i-001,i-002",
    )
    google = findings_of([(_workload(n), "34.64.1.1") for n in range(3)], [0.0] * 3, make, knowledge, 0.0, fleet)
    assert [(f.entity, f.severity) for f in google] == [(_workload(n), "Medium") for n in range(3)]
    two = findings_of([(_workload(n), "13.224.9.10") for n in range(2)], [0.0] * 2, make, knowledge, 0.0, fleet)
    assert [(f.entity, f.severity) for f in two] == [(_workload(0), "Medium"), (_workload(1), "Medium")]


def test_a_redelivered_object_keeps_its_own_findings_after_later_objects_made_their_address_a_fleet_change(
    tmp_path: Path,
) -> None:
    """Object a: three workloads meet an unknown address, three findings. Object b: three more, and the day's six
    make one grouped High finding, b's. Object a redelivered (its findings file is rewritten): the same three
    findings, at the same surprisal, not a grouped finding that b owns (which would leave a's file empty)."""
    from scripts.monitor.report import ObjectReport, keep_first_findings

    detector = _detector(_table())
    book = SqliteLedger(tmp_path / "state.sqlite")
    fleet = FleetContext(DAY, ACCOUNT, book)
    knowledge = Knowledge(detector.memory, detector)

    def deliver(source: str, workloads: range) -> list[Finding]:
        def make(entity: str, ip: str, value: float) -> Any:
            return Finding(entity, ip, value, 0.0, "v1", source, START_MS + 7 * DAY_MS, ACCOUNT, "us-east-1")

        pairs = [(_workload(n), "185.220.101.7") for n in workloads]
        report = ObjectReport(source, findings=findings_of(pairs, [0.0] * len(pairs), make, knowledge, 0.0, fleet))
        keep_first_findings(report, book)
        return report.findings

    first = deliver("s3://lake/a", range(3))
    assert [(f.entity, f.severity) for f in first] == [(_workload(n), "Medium") for n in range(3)]
    [grouped] = deliver("s3://lake/b", range(3, 6))
    assert (grouped.entity, grouped.severity, grouped.evidence["fleet_workloads"]) == (f"{ACCOUNT}/*", "High", "6")
    again = deliver("s3://lake/a", range(3))
    assert [(f.uid, f.severity, f.surprisal) for f in again] == [(f.uid, f.severity, f.surprisal) for f in first]
    assert deliver("s3://lake/b", range(3, 6)) == [grouped]  # b redelivered: still its grouped finding


def _resolver(n: int) -> str:
    return f"{ACCOUNT}/i-{n:03d}#client:resolved"


def test_a_dns_answer_from_an_owner_the_workload_knows_is_low_and_no_alert_on_the_held_out_day(
    tmp_path: Path,
) -> None:
    """The first app server of a rollout resolves the new SaaS on CloudFront (Amazon, whom it talks to): its DNS
    answer is written Low, saying its connection is judged by its flow; an answer from an address no owner is known
    for stays Medium. The held-out day counts the same: one alert, not two."""
    rows = [(_resolver(0), f"52.216.0.{k}", START_MS + day * DAY_MS + k) for day in range(7) for k in range(30)]
    history = Pairs.of([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    detector = Detector.fit(history, None, START_MS + 6 * DAY_MS, DetectorSettings(use_model=False), _table())
    fleet = FleetContext(DAY, ACCOUNT, SqliteLedger(tmp_path / "state.sqlite"))

    def make(entity: str, ip: str, value: float) -> Any:
        return Finding(entity, ip, value, 0.0, "v1", "s3://lake/o", START_MS + 7 * DAY_MS, ACCOUNT, "us-east-1")

    pairs = [(_resolver(0), "13.224.9.9"), (_resolver(0), "185.220.101.7")]
    found = {f.ip: f for f in findings_of(pairs, [0.0, 0.0], make, Knowledge(detector.memory, detector), 0.0, fleet)}
    assert found["13.224.9.9"].severity == "Low"
    assert found["13.224.9.9"].why.endswith("its connection is judged by its flow.")
    assert found["185.220.101.7"].severity == "Medium"
    entities, ips = [e for e, _ in pairs], [ip for _, ip in pairs]
    scored = detector.score(entities, ips, None)
    assert scored["flagged"].all()
    report = detection_report(
        _normal_day(entities, ips),
        scored["flagged"],
        scored["score"],
        np.ones(2, dtype=np.int64),
        detector,
        detector.settings,
        DAY,
        scored["owner_known"],
    )
    assert report.alerts == 1
    assert [alert.ip for alert in report.top_alerts] == ["185.220.101.7"]


def test_a_public_servers_new_client_from_an_isp_it_serves_is_ordinary_one_from_nowhere_is_not() -> None:
    """A public web server meets new clients of one ISP every day, each close to one it served (the same /20): a
    new client of that ISP far from all of them (/12) is ordinary; a client from a network no client ever came from,
    no closer, is still flagged. Without the cap the ISP's far client is flagged too."""
    server = f"{ACCOUNT}/i-web#server:web"
    rows = [
        (server, f"90.{day % 2}.{16 * day + k % 8}.{k}", START_MS + day * DAY_MS + k)
        for day in range(7)
        for k in range(60)
    ]
    history = Pairs.of([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    table = NetworkTable.of_ranges([_range("90.0.0.0/11", "ORANGE")], "test ranges")

    def flagged(settings: DetectorSettings) -> list[bool]:
        detector = Detector.fit(history, None, START_MS + 6 * DAY_MS, settings, table)
        scored = detector.score([server, server], ["90.17.200.9", "91.230.1.9"], None)
        return [bool(v) for v in scored["flagged"].tolist()]

    assert flagged(DetectorSettings(use_model=False)) == [False, True]
    assert flagged(DetectorSettings(use_model=False, served_owner_novelty=1.0)) == [True, True]
