"""The sample lake looks like Security Lake: layout, schemas, dirt, DNS matching flows, drift, labelled anomalies."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import ipaddress
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.samplelake.organisation import Workload
from pipeline.samplelake.topology import AUTOSCALED_ROLES
from pipeline.samplelake.traffic import normal_connections
from pipeline.samplelake.world import build_world
from pipeline.samplelake.writer import LABELS_FILE, GenerationOptions, GenerationReport, generate_lake
from scripts.ocsf.layout import parse_object_key
from scripts.ocsf.schemas import Source, arrow_mismatches
from tests.conftest import END_DAY, small_lake_options

Lake = tuple[GenerationOptions, GenerationReport]


def _files(root: Path, source: Source) -> list[Path]:
    return sorted(p for p in (root / "s3").rglob("*.parquet") if f"/aws/{source.value}/" in p.as_posix())


def _flows(root: Path, version: int) -> pd.DataFrame:
    """Every flow row with the local workload and the remote address, derived from the direction by hand."""
    table = pa.concat_tables([pq.read_table(p) for p in _files(root, Source.VPC_FLOW)])
    while any(pa.types.is_struct(field.type) for field in table.schema):
        table = table.flatten()
    frame: pd.DataFrame = table.to_pandas()
    account = frame["cloud.account_uid"] if version == 1 else frame["cloud.account.uid"]
    inbound = frame["connection_info.direction"] == "Inbound"
    local_side = inbound.map({True: "dst_endpoint", False: "src_endpoint"})
    instance = frame["dst_endpoint.instance_uid"].where(inbound, frame["src_endpoint.instance_uid"])
    interface = frame["dst_endpoint.interface_uid"].where(inbound, frame["src_endpoint.interface_uid"])
    workload = instance.where(instance.notna() & (instance != "-"), interface)
    frame["entity"] = account + "/" + workload.fillna("-")
    frame["remote_ip"] = frame["src_endpoint.ip"].where(inbound, frame["dst_endpoint.ip"])
    frame["local_side"] = local_side
    frame["day"] = pd.to_datetime(frame["time"], unit="ms", utc=True).dt.date
    return frame


def _labels(root: Path) -> list[dict[str, str]]:
    with (root / LABELS_FILE).open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_layout_is_security_lake(lake_v2: Lake) -> None:
    options, report = lake_v2
    for source in Source:
        files = _files(options.root, source)
        assert len(files) == report.files[source.value]
        partitions: dict[tuple[str, str, str], int] = {}
        for path in files:
            relative = path.relative_to(options.root / "s3")
            bucket = relative.parts[0]
            assert bucket.startswith("aws-security-data-lake-")
            assert len(bucket.rsplit("-", 1)[1]) == 30
            location = parse_object_key(relative.as_posix())
            assert location is not None
            assert location.version == 2
            assert len(location.name) == len("0" * 32 + ".gz.parquet")
            key = (location.region, location.account, location.event_day)
            partitions[key] = partitions.get(key, 0) + 1
            assert pq.ParquetFile(path).metadata.row_group(0).column(0).compression == "GZIP"
        assert len({k[0] for k in partitions}) == 2
        assert len({k[1] for k in partitions}) == 3
        assert any(account.startswith("0") for _, account, _ in partitions)
        assert min(partitions.values()) >= 2


@pytest.mark.parametrize("lake_name", ["lake_v1", "lake_v2"])
def test_every_file_reads_back_under_its_declared_schema(lake_name: str, request: pytest.FixtureRequest) -> None:
    options, report = request.getfixturevalue(lake_name)
    rows = 0
    for source in Source:
        for path in _files(options.root, source):
            table = pq.read_table(path)
            assert arrow_mismatches(table.schema, source, options.source_version) == []
            rows += len(table)
    assert rows == report.total_rows


def test_flow_volume_matches_request_and_carries_real_dirt(lake_v2: Lake) -> None:
    options, _ = lake_v2
    flows = _flows(options.root, 2)
    labelled = {(row["entity"], row["ip"]) for row in _labels(options.root)}
    anomaly_rows = sum(pair in labelled for pair in zip(flows["entity"], flows["remote_ip"], strict=True))
    extra_rows = len(flows) - options.events_per_day * options.days
    assert anomaly_rows > 0
    assert abs(extra_rows - anomaly_rows) <= 0.01 * anomaly_rows  # a few anomaly addresses were made malformed
    nodata = flows[flows["status_code"] == "NODATA"]
    assert len(nodata) > 0
    assert (nodata["src_endpoint.ip"] == "-").all()
    assert (nodata["src_endpoint.instance_uid"] == "-").all()
    assert (flows["action"] == "Denied").sum() > 0.02 * len(flows)
    assert (flows["connection_info.protocol_ver"] == "IPv6").sum() > 0

    def malformed(text: str) -> bool:
        try:
            ipaddress.ip_address(text)
        except ValueError:
            return text != "-"
        return False

    assert flows["remote_ip"].map(malformed).sum() > 0
    eni_only = flows[flows["status_code"] == "OK"]
    assert (eni_only["entity"].str.contains("/eni-")).any()


def test_route53_answers_are_addresses_the_instance_then_connects_to(lake_v2: Lake) -> None:
    options, _ = lake_v2
    flows = _flows(options.root, 2)
    contacted = set(zip(flows["entity"], flows["remote_ip"], strict=True))
    dns = pa.concat_tables([pq.read_table(p) for p in _files(options.root, Source.ROUTE53)]).to_pylist()
    assert len(dns) > 100
    answered = [row for row in dns if row["answers"]]
    assert any(row["rcode"] == "NXDomain" for row in dns)
    matches = sum(
        any(
            (f"{row['cloud']['account']['uid']}/{row['src_endpoint']['instance_uid']}", a["rdata"]) in contacted
            for a in row["answers"]
            if a["type"] in {"A", "AAAA"}
        )
        for row in answered
    )
    assert matches == len(answered)
    assert any(a["type"] == "CNAME" for row in answered for a in row["answers"])


def test_peers_drift_a_little_every_day(lake_v2: Lake) -> None:
    options, _ = lake_v2
    flows = _flows(options.root, 2)
    normal = flows[(flows["status_code"] == "OK") & (flows["action"] == "Allowed")]
    first_seen = normal.groupby(["entity", "remote_ip"])["day"].min()
    per_day = first_seen.value_counts()
    first_day = END_DAY - dt.timedelta(days=options.days - 1)
    assert per_day[first_day] > per_day[first_day + dt.timedelta(days=1)] > 0
    seen_on_day_0 = normal[normal["day"] == first_day].groupby("entity")["remote_ip"].nunique()
    assert seen_on_day_0.max() > 10 * seen_on_day_0.median()  # heavy-tailed: fronts see many, databases few


def test_labelled_anomalies_appear_only_on_the_last_day(lake_v2: Lake) -> None:
    options, report = lake_v2
    labels = _labels(options.root)
    assert report.labels == len(labels)
    assert {row["kind"] for row in labels} == {
        "egress_new_network",
        "beacon",
        "lateral_movement",
        "compromised_web_outbound",
    }
    flows = _flows(options.root, 2)
    days_seen = flows.groupby(["entity", "remote_ip"])["day"].agg(lambda days: sorted(set(days)))
    for row in labels:
        assert days_seen[(row["entity"], row["ip"])] == [END_DAY], row
        seen = flows[(flows["entity"] == row["entity"]) & (flows["remote_ip"] == row["ip"])]["time"].min()
        assert dt.datetime.fromisoformat(row["first_seen"]) == dt.datetime.fromtimestamp(seen / 1000, tz=dt.UTC)


def _digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted((root / "s3").rglob("*.parquet")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    digest.update((root / LABELS_FILE).read_bytes())
    return digest.hexdigest()


def test_same_seed_same_lake_other_seed_other_lake(tmp_path: Path) -> None:
    first = small_lake_options(tmp_path / "a", 2, seed=5)
    generate_lake(first)
    again = small_lake_options(tmp_path / "b", 2, seed=5)
    generate_lake(again)
    other = small_lake_options(tmp_path / "c", 2, seed=6)
    generate_lake(other)
    assert _digest(first.root) == _digest(again.root)
    assert _digest(first.root) != _digest(other.root)


def test_autoscaling_replaces_instances_with_new_ones_that_have_the_same_peers() -> None:
    world = build_world(5, 4, 2, ["us-east-1"], 0.05, churn=0.5)
    launched = [w for w in world.workloads if w.first_day > 0]
    assert launched and {w.role for w in launched} <= set(AUTOSCALED_ROLES)
    peers = world.peers
    scaled = {world.ip_id(w.ip) for w in world.workloads if w.role in AUTOSCALED_ROLES}

    def reached(workload: Workload, day: int, alive_only: bool) -> set[int]:
        """The addresses a workload's relations reach on a day, other autoscaled instances aside."""
        rows = slice(peers.segment_start[workload.index], peers.segment_end[workload.index])
        live = peers.first_day[rows] <= day
        if alive_only:
            live &= peers.last_day[rows] >= day
        return set(peers.ip[rows][live].tolist()) - scaled

    for new in launched:
        replaced = [
            w
            for w in world.workloads
            if w.last_day == new.first_day - 1 and (w.vpc_uid, w.role) == (new.vpc_uid, new.role)
        ]
        assert replaced and all(new.instance_uid != w.instance_uid and new.ip != w.ip for w in replaced)
        mine = reached(new, new.first_day, alive_only=True)
        assert any(mine == reached(old, new.first_day, alive_only=False) for old in replaced)  # the same peers
        reaching_new = peers.ip == world.ip_id(new.ip)
        assert reaching_new.any() and (peers.first_day[reaching_new] >= new.first_day).all()
        for old in replaced:
            reaching_old = peers.ip == world.ip_id(old.ip)
            assert (peers.last_day[reaching_old] <= old.last_day).all()  # its peers stop reaching it
    rng = np.random.default_rng(0)
    for day in range(4):
        cumulative = peers.day_cumulative(day)
        for partition in range(len(world.partitions)):
            drawn = normal_connections(rng, world, partition, day, cumulative, np.zeros(2_000, dtype=np.int64))
            assert all(world.workloads[w].alive(day) for w in set(drawn.workload.tolist()))
            chosen = [world.ip_text[i] for i in set(drawn.remote_ip.tolist())]
            dead = {w.ip for w in world.workloads if not w.alive(day) and w.role in AUTOSCALED_ROLES}
            assert not dead & set(chosen)  # nobody talks to an instance that is gone


def test_cross_account_lateral_movement_and_exfiltration_are_opt_in_kinds(lake_v2: Lake, tmp_path: Path) -> None:
    """Issue 14's kinds: an app server's first connections to a database of another account in its region (both
    sides logged, each in its own account), and an app server's ~80 MB upload over 443 to another cloud's address.
    Adding them leaves every other injected anomaly as it was."""
    from dataclasses import replace

    from pipeline.samplelake.addresses import OTHER_CLOUD_V4
    from pipeline.samplelake.anomalies import ALL_ANOMALY_KINDS, EXFILTRATION_BYTES

    default, _ = lake_v2
    options = replace(default, root=tmp_path / "extra", anomaly_kinds=ALL_ANOMALY_KINDS)
    generate_lake(options)
    labels = _labels(options.root)
    kinds = {row["kind"] for row in labels}
    assert kinds == set(ALL_ANOMALY_KINDS)
    assert [r for r in labels if r["kind"] in {r["kind"] for r in _labels(default.root)}] == _labels(default.root)
    flows = _flows(options.root, 2)
    lateral = [r for r in labels if r["kind"] == "cross_account_lateral_movement"]
    assert lateral and len(lateral) % 2 == 0
    by_ip = {}
    for row in lateral:
        assert ipaddress.ip_address(row["ip"]).is_private
        by_ip[row["ip"]] = row
    for row in lateral:
        side = flows[(flows["entity"] == row["entity"]) & (flows["remote_ip"] == row["ip"])]
        assert ((side["dst_endpoint.port"] == 5432) | (side["src_endpoint.port"] == 5432)).all()  # and replies
        own_address = side["dst_endpoint.ip"].where(side["local_side"] == "dst_endpoint", side["src_endpoint.ip"])
        other = by_ip[own_address.iloc[0]]  # the peer logged the same connections from its side
        assert other["account"] != row["account"] and other["region"] == row["region"]
    exfiltration = [r for r in labels if r["kind"] == "exfiltration_443"]
    assert exfiltration
    for row in exfiltration:
        assert any(ipaddress.ip_address(row["ip"]) in ipaddress.ip_network(block) for block in OTHER_CLOUD_V4)
        sent = flows[(flows["entity"] == row["entity"]) & (flows["remote_ip"] == row["ip"])]
        outbound = sent[sent["local_side"] == "src_endpoint"]
        assert set(outbound["dst_endpoint.port"]) == {443}
        assert abs(int(outbound["traffic.bytes"].sum()) - EXFILTRATION_BYTES) < 0.01 * EXFILTRATION_BYTES


def test_s3_rotation_and_cross_account_calls_are_realism_options() -> None:
    """S3 answering from many published networks with many new addresses a day, and app servers calling other
    accounts' app servers: what a real organisation shows and the plain sample lake does not."""
    from pipeline.samplelake.services import S3_MORE_NETWORKS
    from pipeline.samplelake.topology import CROSS_ACCOUNT_API_PORT

    plain = build_world(5, 4, 3, ["us-east-1"], 0.05)
    real = build_world(5, 4, 3, ["us-east-1"], 0.05, s3_rotation=True, cross_account_calls=True)

    def s3(world: Any) -> Any:
        return next(s for s in world.services if s.name == "s3.us-east-1.amazonaws.com")

    def networks(world: Any) -> set[str]:
        blocks = ("52.216.0.0/15", *S3_MORE_NETWORKS["us-east-1"])
        found = set()
        for ip in s3(world).ips.tolist():
            address = ipaddress.ip_address(world.ip_text[ip])
            found |= {b for b in blocks if address in ipaddress.ip_network(b)}
        return found

    assert networks(plain) == {"52.216.0.0/15"}
    assert len(networks(real)) == 6
    assert (s3(real).first_day > 0).sum() > 5 * (s3(plain).first_day > 0).sum()
    apps = [w for w in real.workloads if w.role == "app"]
    by_ip = {w.ip: w for w in real.workloads}
    for app in apps:
        rows = slice(real.peers.segment_start[app.index], real.peers.segment_end[app.index])
        called = {
            by_ip[real.ip_text[ip]].account
            for ip, port, mine in zip(
                real.peers.ip[rows].tolist(),
                real.peers.service_port[rows].tolist(),
                real.peers.initiator_local[rows].tolist(),
                strict=True,
            )
            if mine and port == CROSS_ACCOUNT_API_PORT and real.ip_text[ip] in by_ip
        }
        assert called == {w.account for w in apps} - {app.account}, app.entity
    plain_by_ip = {w.ip: w for w in plain.workloads}
    for app in [w for w in plain.workloads if w.role == "app"]:
        rows = slice(plain.peers.segment_start[app.index], plain.peers.segment_end[app.index])
        accounts = {
            plain_by_ip[plain.ip_text[ip]].account
            for ip in plain.peers.ip[rows].tolist()
            if plain.ip_text[ip] in plain_by_ip
        }
        assert accounts == {app.account}  # the plain sample lake: no workload reaches another account


def test_a_blue_green_deployment_replaces_one_vpcs_app_fleet_on_the_last_day_and_labels_what_it_changed() -> None:
    """Every app server of one VPC gets a new instance and address on the last day, with its predecessor's
    relations; its peers reach the new address instead; each of those (workload, address) pairs is a benign label."""
    from pipeline.samplelake.changes import plan_changes
    from pipeline.samplelake.topology import BLUE_GREEN

    plain = build_world(5, 4, 2, ["us-east-1"], 0.05)
    world = build_world(5, 4, 2, ["us-east-1"], 0.05, blue_green=True)
    green = [world.workloads[i] for i in world.launched[BLUE_GREEN]]
    assert len(green) == 4 and {w.role for w in green} == {"app"} and {w.first_day for w in green} == {3}
    assert len({w.vpc_uid for w in green}) == 1
    blue = [w for w in world.workloads if w.role == "app" and w.vpc_uid == green[0].vpc_uid and w.first_day == 0]
    assert {w.last_day for w in blue} == {2} and len(world.workloads) == len(plain.workloads) + 4
    peers = world.peers

    def relations(index: int) -> set[tuple[str, int]]:
        rows = slice(peers.segment_start[index], peers.segment_end[index])
        return {
            (world.ip_text[ip], int(port)) for ip, port in zip(peers.ip[rows], peers.service_port[rows], strict=True)
        }

    for old, new in zip(sorted(blue, key=lambda w: w.index), green, strict=True):
        assert relations(new.index) <= relations(old.index) and relations(new.index)
        reached = peers.owner[(peers.ip == world.ip_id(new.ip)) & (peers.first_day == 3)]
        assert len(reached) > 0
    [injection] = plan_changes(world, 5, 0, (BLUE_GREEN,))
    labels = {(label.entity, label.ip) for label in injection.labels}
    assert injection.connections is None and {label.kind for label in injection.labels} == {BLUE_GREEN}
    for new in green:
        assert {(new.entity, ip) for ip, _ in relations(new.index)} <= labels
        assert any(ip == new.ip for _, ip in labels)


def test_a_new_service_is_called_by_its_vpcs_web_servers_on_a_port_they_never_used() -> None:
    """Two new instances in one VPC on the last day use what an app server there uses, and every web server of the
    VPC calls them on 9090; each of those pairs is a benign label."""
    from pipeline.samplelake.changes import plan_changes
    from pipeline.samplelake.topology import NEW_SERVICE, NEW_SERVICE_PORT

    world = build_world(5, 4, 2, ["us-east-1"], 0.05, new_service=True)
    launched = [world.workloads[i] for i in world.launched[NEW_SERVICE]]
    assert len(launched) == 2 and {w.first_day for w in launched} == {3} and len({w.vpc_uid for w in launched}) == 1
    peers = world.peers
    webs = {w.index for w in world.workloads if w.role == "web" and w.vpc_uid == launched[0].vpc_uid}
    for service in launched:
        callers = (peers.ip == world.ip_id(service.ip)) & (peers.service_port == NEW_SERVICE_PORT)
        assert set(peers.owner[callers].tolist()) == webs and set(peers.first_day[callers].tolist()) == {3}
        rows = slice(peers.segment_start[service.index], peers.segment_end[service.index])
        assert (peers.service_port[rows] == 5432).any()  # its database, as the app server it was modelled on
    assert not (peers.service_port[peers.first_day < 3] == NEW_SERVICE_PORT).any()
    [injection] = plan_changes(world, 5, 0, (NEW_SERVICE,))
    labels = {(label.entity, label.ip) for label in injection.labels}
    assert {(world.workloads[web].entity, service.ip) for web in webs for service in launched} <= labels


def test_ipam_subnets_interleave_accounts_and_databases_fail_over_to_another_subnet() -> None:
    """Subnets drawn from an IPAM pool (an address's /16 no longer names its account) and databases that fail over
    to a standby in another subnet, which their app servers then reach: what the address book is for."""
    plain = build_world(5, 4, 3, ["us-east-1"], 0.05)
    real = build_world(5, 4, 3, ["us-east-1"], 0.05, ipam_subnets=True, db_failover=0.5)
    assert {w.ip.split(".")[1] for w in plain.workloads} == {"1", "2", "3"}  # one /16 per VPC
    prefixes = {w.ip.rsplit(".", 1)[0]: w.account for w in real.workloads}
    assert len({p.split(".")[1] for p in prefixes}) > 6  # subnets scattered over 10/8
    databases = [w for w in real.workloads if w.role == "db"]
    moved = [w for w in databases if w.first_day > 0]
    assert moved, "with failover 0.5 over 4 days, some database fails over"
    for standby in moved:
        before = next(w for w in databases if w.account == standby.account and w.last_day == standby.first_day - 1)
        assert standby.ip.rsplit(".", 1)[0] != before.ip.rsplit(".", 1)[0]
        assert standby.subnet_uid != before.subnet_uid
        reached_by = {
            real.peers.owner[row]
            for row in range(len(real.peers.owner))
            if real.ip_text[real.peers.ip[row]] == standby.ip and real.peers.first_day[row] == standby.first_day
        }
        assert any(real.workloads[owner].role == "app" for owner in reached_by)


def test_benign_changes_are_opt_in_labelled_apart_and_leave_the_attacks_as_they_were(
    lake_v2: Lake, tmp_path: Path
) -> None:
    """A SaaS rollout (every alive app server of every account, and its VPC's NAT gateway, meets the same new
    CloudFront addresses: Amazon's, a network no workload reached before) and patch day (every server meets the same
    new addresses of the Debian mirror's network, already reached) on the last day, in labels/benign_changes.csv;
    the attacks' labels are those of the same lake without them (blue/green and a new service change the organisation
    itself, which servers run on the last day: their own test)."""
    from dataclasses import replace

    from pipeline.network_table import network_table
    from pipeline.samplelake.changes import BENIGN_CHANGES, PATCH_ROLES, SAAS_ROLLOUT_CIDR, plan_changes
    from pipeline.samplelake.labels import benign_changes
    from pipeline.samplelake.topology import BLUE_GREEN, NEW_SERVICE
    from pipeline.samplelake.writer import BENIGN_LABELS_FILE

    default, _ = lake_v2
    injected = tuple(change for change in BENIGN_CHANGES if change not in {BLUE_GREEN, NEW_SERVICE})
    options = replace(default, root=tmp_path / "benign", benign_changes=injected)
    report = generate_lake(options)
    assert _labels(options.root) == _labels(default.root)
    assert not (default.root / BENIGN_LABELS_FILE).exists() and benign_changes(default.root) == set()
    with (options.root / BENIGN_LABELS_FILE).open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert report.benign_labels == len(rows) > 0
    flows = _flows(options.root, 2)
    last = flows["day"].max()
    alive_last_day = flows[flows["day"] == last]
    rollout = {r["ip"] for r in rows if r["kind"] == "saas_rollout"}
    patch = {r["ip"] for r in rows if r["kind"] == "patch_day"}
    assert len(rollout) == 4 and len(patch) == 3
    owners = network_table().owners(sorted(rollout))
    assert {
        network_table().describe(int(o), str(n)) for o, n in zip(owners.organisation, owners.name, strict=True)
    } == {"Amazon (AMAZON-02, cloud)"}
    assert all(ipaddress.ip_address(ip) in ipaddress.ip_network(SAAS_ROLLOUT_CIDR) for ip in rollout)
    before = flows[flows["day"] < last]
    assert not before["remote_ip"].map(lambda ip: ":" not in ip and ip.startswith("18.16")).any()
    assert before["remote_ip"].str.startswith("151.101.").any()  # the mirror's network was known
    assert not before["remote_ip"].isin(rollout | patch).any()
    world = build_world(options.seed, options.days, options.accounts, list(options.regions), 0.05)
    servers = {w.entity: w.role for w in world.workloads if w.alive(options.days - 1)}
    apps = {entity for entity, role in servers.items() if role == "app"}
    patched = {entity for entity, role in servers.items() if role in PATCH_ROLES}
    for ip in rollout | patch:
        met = set(alive_last_day.loc[alive_last_day["remote_ip"] == ip, "entity"])
        assert met == {r["entity"] for r in rows if r["ip"] == ip}
        assert (apps if ip in rollout else patched) <= met  # every one of them, and their NAT gateways
        assert {servers[e] for e in met} - {"app", "nat"} == set() if ip in rollout else True
    accounts = {r["account"] for r in rows}
    assert accounts == set(flows["cloud.account.uid"]) and benign_changes(options.root) == {
        (r["entity"], r["ip"]) for r in rows
    }
    with pytest.raises(ValueError, match=r"unknown benign changes \['new_saas'\]; allowed: saas_rollout, patch_day"):
        plan_changes(build_world(1, 2, 2, ["us-east-1"], 0.0), 1, 0, ("new_saas",))


def test_findings_above_low_on_a_benign_changes_pairs_are_counted_and_an_attacks_are_the_attacks() -> None:
    """The judge of `seclake run`: a grouped finding names its account as `<account>/*`, a pair its workload. A pair
    is an alert on a benign change when the change made it, a grouped finding when the change made its account meet
    the address; an alert on a labelled attack is the attack's; a Low one is no alert at all."""
    from pipeline.samplelake.labels import judge_findings
    from scripts.entity import account_of
    from scripts.monitor.findings import Finding

    def finding(entity: str, ip: str, severity: str) -> Finding:
        return Finding(entity, ip, 0.0, 0.0, "v1", "s3://lake/o", 0, account_of(entity), "r", severity=severity)

    findings = [
        finding("111122223333/*", "18.160.1.1", "Low"),
        finding("111122223333/*", "18.160.1.2", "High"),
        finding("111122223333/i-1#client:web", "18.160.1.1", "Medium"),
        finding("444455556666/i-2#client:web", "18.160.1.1", "Medium"),
        finding("111122223333/i-3#client:other", "5.188.0.9", "Medium"),
        finding("111122223333/i-4#client:db", "18.160.1.1", "Medium"),  # not a workload the change touched
        finding("111122223333/i-5#client:admin", "10.0.3.16", "Medium"),  # an attack on a database the change uses
    ]
    benign = {
        ("111122223333/i-1", "18.160.1.1"),
        ("111122223333/i-2", "18.160.1.2"),
        ("111122223333/i-9", "10.0.3.16"),
    }
    attacks = {("111122223333/i-3", "5.188.0.9"), ("111122223333/i-5", "10.0.3.16")}
    judged = judge_findings(findings, attacks, benign)
    assert judged.benign_alerts == {("111122223333/*", "18.160.1.2"), ("111122223333/i-1", "18.160.1.1")}
    assert judged.informational == {("111122223333/*", "18.160.1.1")}
    assert (judged.hits, len(judged.alerts), judged.recall) == (2, 6, 1.0)
    missed = judge_findings(findings[:4], {("111122223333/i-3", "5.188.0.9"), ("111122223333/i-1", "18.160.1.1")})
    kinds = {("111122223333/i-3", "5.188.0.9"): "internal_scan", ("111122223333/i-1", "18.160.1.1"): "beacon"}
    assert missed.recall_by_kind(kinds) == {"beacon": (1, 1), "internal_scan": (0, 1)}
    assert judge_findings(findings, set()).benign_alerts == frozenset()


def test_stealthy_kinds_hide_in_what_the_organisation_already_uses(lake_v2: Lake, tmp_path: Path) -> None:
    """Issue 27's attacks, opt-in: 2 GB to an Amazon address no workload reached (resolved from a bucket name never
    asked for), a five-minute beacon to a Cloudflare address, and a scan of 40 addresses of the scanner's own VPC, of
    which only the accepted probes are labelled (the refused ones are logged REJECT and give no pair). The default
    kinds' labels are those of the same lake without them."""
    from dataclasses import replace

    from pipeline.network_table import network_table
    from pipeline.samplelake.anomalies import ANOMALY_KINDS, STEALTHY_KINDS
    from pipeline.samplelake.stealthy import OWN_PROVIDER_UPLOAD_BYTES, SCAN_ADDRESSES

    default, _ = lake_v2
    options = replace(default, root=tmp_path / "stealthy", anomaly_kinds=ANOMALY_KINDS + STEALTHY_KINDS)
    generate_lake(options)
    labels = _labels(options.root)
    assert [r for r in labels if r["kind"] in ANOMALY_KINDS] == _labels(default.root)
    by_kind: dict[str, list[dict[str, str]]] = {}
    for row in labels:
        by_kind.setdefault(row["kind"], []).append(row)
    assert set(STEALTHY_KINDS) <= set(by_kind)
    table = network_table()

    def owner(ip: str) -> str:
        owners = table.owners([ip])
        return table.describe(int(owners.organisation[0]), str(owners.name[0]))

    flows = _flows(options.root, 2)
    before = flows[flows["day"] < flows["day"].max()]
    for row in by_kind["exfiltration_own_provider"]:
        assert owner(row["ip"]) == "Amazon (AMAZON-02, cloud)"
        assert not before["remote_ip"].str.startswith(row["ip"].rsplit(".", 2)[0] + ".").any()  # its /16 unknown
        sent = flows[(flows["entity"] == row["entity"]) & (flows["remote_ip"] == row["ip"])]
        uploaded = int(sent.loc[sent["local_side"] == "src_endpoint", "traffic.bytes"].sum())
        assert abs(uploaded - OWN_PROVIDER_UPLOAD_BYTES) < 0.01 * OWN_PROVIDER_UPLOAD_BYTES
    for row in by_kind["c2_through_cdn"]:
        assert owner(row["ip"]) == "Cloudflare (CLOUDFLARENET, cdn)"
        sent = flows[(flows["entity"] == row["entity"]) & (flows["remote_ip"] == row["ip"])]
        times = np.sort(sent.loc[sent["local_side"] == "src_endpoint", "time"].to_numpy())
        assert len(times) > 100 and 240_000 < float(np.median(np.diff(times))) < 360_000
    scans = by_kind["internal_scan"]
    scanners = {r["entity"] for r in scans}
    assert len(scanners) == options.anomalies_per_kind
    for scanner in scanners:
        probes = flows[(flows["entity"] == scanner) & (flows["local_side"] == "src_endpoint")]
        probes = probes[probes["day"] == flows["day"].max()]
        probed = probes[probes["dst_endpoint.port"].isin([22, 445, 3389, 5432])]
        refused = probed[probed["action"] == "Denied"]["remote_ip"]
        accepted = {r["ip"] for r in scans if r["entity"] == scanner}
        assert all(ipaddress.ip_address(ip).is_private for ip in accepted)
        assert len(set(refused)) + len(accepted) >= SCAN_ADDRESSES and len(set(refused)) > len(accepted)
        assert not accepted & set(refused)  # the refused ones are not labelled
    _assert_tunnels(options.root, by_kind["dns_tunnelling"], flows)
    _assert_rogue_instances(by_kind["rogue_instance"], flows)


def _assert_rogue_instances(labels: list[dict[str, str]], flows: pd.DataFrame) -> None:
    """Each rogue instance appears on the last day only: SSH logins from one address, then a mining pool on 3333;
    both pairs labelled."""
    last = flows["day"].max()
    for rogue in {r["entity"] for r in labels}:
        mine = flows[flows["entity"] == rogue]
        assert set(mine["day"]) == {last}
        logins = mine[(mine["local_side"] == "dst_endpoint") & (mine["dst_endpoint.port"] == 22)]
        mining = mine[(mine["local_side"] == "src_endpoint") & (mine["dst_endpoint.port"] == 3333)]
        assert len(set(logins["remote_ip"])) == 1 and len(mining) >= 150
        assert {r["ip"] for r in labels if r["entity"] == rogue} == set(logins["remote_ip"]) | set(mining["remote_ip"])


def _assert_tunnels(root: Path, labels: list[dict[str, str]], flows: pd.DataFrame) -> None:
    """Each tunnelling workload asked, on the last day, for hundreds of distinct hex names under one domain no
    workload asked for before, answered by TXT records and by the labelled Amazon addresses, to which it opened no
    connection."""
    from scripts.detect.tunnelling import base_domain

    rows = pa.concat_tables([pq.read_table(p) for p in _files(root, Source.ROUTE53)]).to_pylist()
    last = max(row["time"] for row in rows) // 86_400_000
    asked_before = {base_domain(r["query"]["hostname"]) for r in rows if r["time"] // 86_400_000 < last}
    tunnelling = {r["entity"].split("/")[1] for r in labels}
    assert len(tunnelling) >= 1
    for instance in tunnelling:
        mine = [r for r in rows if r["src_endpoint"]["instance_uid"] == instance and r["time"] // 86_400_000 == last]
        domains: dict[str, set[str]] = {}
        for row in mine:
            domains.setdefault(base_domain(row["query"]["hostname"]), set()).add(row["query"]["hostname"])
        domain, names = max(domains.items(), key=lambda item: len(item[1]))
        assert len(names) >= 600 and domain not in asked_before
        answers = [a for r in mine if base_domain(r["query"]["hostname"]) == domain for a in r["answers"]]
        assert {a["type"] for a in answers} == {"A", "TXT"}
        labelled = {r["ip"] for r in labels if r["entity"].endswith("/" + instance)}
        assert {a["rdata"] for a in answers if a["type"] == "A"} == labelled
        assert not flows["remote_ip"].isin(labelled).any()


def test_nightly_backups_upload_gigabytes_to_s3_addresses_that_rotate() -> None:
    """Every database and batch server uploads its backup to its region's S3 each night (its own size, 0.8 to 1.25
    of it), over several connections it opens on 443, the NAT gateway's legs beside them; with S3 rotating, most
    nights reach addresses the server never met: large first uploads that are normal."""
    from pipeline.samplelake.backups import BACKUP_ROLES, NIGHTLY_GROWTH, backup_size, nightly_backups

    world = build_world(5, 4, 3, ["us-east-1"], 0.05, s3_rotation=True)
    s3 = next(s for s in world.services if s.name == "s3.us-east-1.amazonaws.com")
    s3_ips = set(s3.ips.tolist())
    met: dict[int, set[int]] = {}
    new_nights = 0
    for day in range(4):
        for partition in range(len(world.partitions)):
            backups = nightly_backups(world, 5, partition, day, 0)
            servers = [
                m
                for m in world.partitions[partition].workloads.tolist()
                if world.workloads[m].role in BACKUP_ROLES and world.workloads[m].alive(day)
            ]
            assert backups is not None and servers
            assert set(backups.remote_ip.tolist()) <= s3_ips
            assert set(backups.remote_port.tolist()) == {443} and backups.initiator_local.all()
            for server in servers:
                own = backups.workload == server
                sent = int(backups.bytes[own].sum())
                low, high = NIGHTLY_GROWTH
                assert low * backup_size(5, server) * 0.99 <= sent <= high * backup_size(5, server)
                addresses = set(backups.remote_ip[own].tolist())
                new_nights += day > 0 and bool(addresses - met.get(server, set()))
                met.setdefault(server, set()).update(addresses)
            nats = {w.index for w in world.workloads if w.role == "nat"}
            legs = np.isin(backups.workload, list(nats))
            assert int(backups.bytes[legs].sum()) == int(backups.bytes[~legs].sum())  # through the NAT gateway
    assert new_nights >= 0.8 * 3 * len(met)


def _world_digest(world: Any) -> str:
    """A digest of everything a world fixes: its workloads, its peer relations, its addresses and partitions."""
    from dataclasses import astuple

    digest = hashlib.sha256()
    for workload in world.workloads:
        digest.update(repr(astuple(workload)).encode())
    for column in ("owner", "ip", "service_port", "initiator_local", "protocol", "weight", "first_day", "service"):
        digest.update(np.ascontiguousarray(getattr(world.peers, column)).tobytes())
    digest.update(np.ascontiguousarray(world.peers.last_day).tobytes())
    digest.update("\n".join(world.ip_text).encode())
    digest.update(repr([(p.region, p.account, p.workloads.tolist(), p.activity) for p in world.partitions]).encode())
    return digest.hexdigest()


# The default organisation (15 workloads a VPC, every realism option on) as generated before workloads_per_vpc:
# change it only with a change to the default organisation that is meant.
DEFAULT_WORLD_DIGEST = "00fa0a0fffafee0b9716bde4bde5b6a288cb35098d446eea960efdf5799c7fcb"


def test_the_default_organisation_is_the_one_before_workloads_per_vpc() -> None:
    """15 workloads a VPC are ROLE_COUNTS exactly, and the world (autoscaling, failover, calls across accounts, blue
    and green, a new service) is byte for byte the one generated before VPCs could grow."""
    from pipeline.samplelake.organisation import DEFAULT_WORKLOADS_PER_VPC, ROLE_COUNTS, role_counts

    assert role_counts(DEFAULT_WORKLOADS_PER_VPC) == ROLE_COUNTS
    world = build_world(
        5, 4, 3, ["us-east-1", "eu-west-1"], 0.05, churn=0.3, db_failover=0.3, cross_account_calls=True,
        s3_rotation=True, blue_green=True, new_service=True,
    )  # fmt: skip
    assert _world_digest(world) == DEFAULT_WORLD_DIGEST


def _check_addresses(world: Any) -> None:
    """Every workload's address is its own, a valid host of 10/8, in its subnet's /24, and no two subnets share one."""
    from pipeline.samplelake.layout import END_HOST, FIRST_HOST

    addresses = [ipaddress.ip_address(w.ip) for w in world.workloads]
    assert len(set(addresses)) == len(addresses)
    assert all(a.version == 4 and a in ipaddress.ip_network("10.0.0.0/8") for a in addresses)
    assert all(FIRST_HOST <= int(a) % 256 < END_HOST for a in addresses)
    prefix_of: dict[str, set[str]] = {}
    for workload in world.workloads:
        prefix_of.setdefault(workload.subnet_uid, set()).add(workload.ip.rsplit(".", 1)[0])
    assert all(len(prefixes) == 1 for prefixes in prefix_of.values())  # a subnet is one /24 ...
    assert len({next(iter(p)) for p in prefix_of.values()}) == len(prefix_of)  # ... of its own


@pytest.mark.parametrize("ipam_subnets", [False, True])
def test_workloads_per_vpc_grows_every_vpc_with_an_address_of_its_own_in_its_subnet(ipam_subnets: bool) -> None:
    """4 accounts x 2 regions x 40 workloads: ROLE_COUNTS scaled (3 load balancer ENIs, 3 NAT gateways, 5 databases
    a VPC), with autoscaled and failed-over replacements, each address unique and inside its subnet."""
    from pipeline.samplelake.organisation import role_counts

    world = build_world(
        5, 3, 4, ["us-east-1", "eu-west-1"], 0.05, churn=0.3, db_failover=0.3, ipam_subnets=ipam_subnets,
        workloads_per_vpc=40,
    )  # fmt: skip
    counts = role_counts(40)
    assert sum(counts.values()) == 40 and (counts["lb"], counts["nat"], counts["db"], counts["app"]) == (3, 3, 5, 11)
    initial = [w for w in world.workloads if w.first_day == 0]
    assert len(initial) == 4 * 2 * 40
    for vpc in {w.vpc_uid for w in initial}:
        roles = [w.role for w in initial if w.vpc_uid == vpc]
        assert {role: roles.count(role) for role in counts} == counts
    assert len(world.workloads) > len(initial)  # replacements took new addresses too
    _check_addresses(world)


def test_a_tier_of_many_workloads_spans_several_subnets() -> None:
    """120 workloads a VPC put 72 in the private tier: two /24 subnets, neither holding more than
    WORKLOADS_PER_SUBNET at first, so replacements still find free hosts."""
    from pipeline.samplelake.layout import WORKLOADS_PER_SUBNET, tier_of

    world = build_world(5, 3, 2, ["us-east-1"], 0.05, churn=0.5, db_failover=0.5, workloads_per_vpc=120)
    initial = [w for w in world.workloads if w.first_day == 0]
    for vpc in {w.vpc_uid for w in initial}:
        private = [w for w in initial if w.vpc_uid == vpc and tier_of(w.role) == "private"]
        per_subnet = [sum(w.subnet_uid == s for w in private) for s in {w.subnet_uid for w in private}]
        assert len(private) == 72 and len(per_subnet) == 2 and max(per_subnet) <= WORKLOADS_PER_SUBNET
    _check_addresses(world)


def test_more_vpcs_than_the_fixed_plan_addresses_need_ipam_subnets() -> None:
    """64 accounts x 4 regions are 256 VPCs, one more than 10/8 has /16s for: refused, naming the fix."""
    regions = ["us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2"]
    with pytest.raises(ValueError, match=r"256 VPCs .* set sample_lake\.ipam_subnets: true"):
        build_world(5, 2, 64, regions, 0.05)


def test_the_scale_config_is_an_organisation_of_10_000_workloads() -> None:
    """benchmarks/scale.yaml: 50 accounts x 4 regions x workloads_per_vpc, its own home, what `lake generate` uses."""
    from pipeline.cli.lake import generation_options
    from pipeline.config import CONFIG_DIR, load_config

    config = load_config(user_file=CONFIG_DIR.parent / "benchmarks" / "scale.yaml", environ={})
    options = generation_options(config)
    assert options.accounts * len(options.regions) * options.workloads_per_vpc == 10_000
    assert config.home == Path(".seclake-scale")
    assert options.ipam_subnets and options.cross_account_calls and options.nightly_backups
