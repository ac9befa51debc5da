"""Network owners: the offline table, its organisations, and novelty that knows S3's new /16 is still Amazon."""

from __future__ import annotations

import io
import ipaddress
from pathlib import Path

import numpy as np
import pytest

from pipeline.network_table import network_table, npz_bytes
from scripts.detect.artifact import load_detector, save_detector
from scripts.detect.decision import novelty, novelty_keys
from scripts.detect.detector import Detector
from scripts.detect.explain import describe, gather
from scripts.detect.memory import Memory, Pairs
from scripts.detect.networks import AnnouncedRange, NetworkTable, NetworkTableError
from scripts.detect.owners import Ownership
from scripts.detect.providers import CDN, CLOUD, NETWORK, classify
from scripts.detect.settings import DAY_MS, KNOWN_OWNER_NOVELTY, DetectorSettings


def _v4(cidr: str, name: str) -> AnnouncedRange:
    network = ipaddress.ip_network(cidr)
    return AnnouncedRange.of_network(int(network.network_address), network.prefixlen, name, ipv4=True)


def _v6(cidr: str, name: str) -> AnnouncedRange:
    network = ipaddress.ip_network(cidr)
    return AnnouncedRange.of_network(int(network.network_address), network.prefixlen, name, ipv4=False)


def small_table() -> NetworkTable:
    return NetworkTable.of_ranges(
        [
            _v4("52.216.0.0/15", "AMAZON-02"),
            _v4("54.231.0.0/16", "AMAZON-AES"),
            _v4("34.64.0.0/10", "GOOGLE-CLOUD-PLATFORM"),
            _v4("34.64.0.0/16", "OVERLAPS-AND-IS-DROPPED"),
            _v4("24.0.0.0/12", "COMCAST-7922"),
            _v4("10.0.0.0/8", "IANA.ORG"),
            _v4("1.1.1.0/24", "CLOUDFLARENET"),
            _v6("2600:1700::/28", "ATT-INTERNET4"),
        ],
        "test ranges",
    )


def test_owner_is_the_range_an_address_falls_in_and_none_in_gaps_and_reserved_space() -> None:
    table = small_table()
    ips = ["52.217.255.255", "54.231.9.9", "34.127.0.1", "34.64.1.1", "53.0.0.1", "10.1.2.3", "2600:1700::5", "::1"]
    owners = table.owners(ips)
    assert owners.name.tolist() == [
        "AMAZON-02",
        "AMAZON-AES",
        "GOOGLE-CLOUD-PLATFORM",
        "GOOGLE-CLOUD-PLATFORM",
        "",
        "",
        "ATT-INTERNET4",
        "",
    ]
    amazon = owners.organisation[0]
    assert owners.organisation[1] == amazon  # two autonomous systems, one organisation
    assert owners.organisation.tolist()[4:6] == [-1, -1]
    assert table.describe(int(amazon), "AMAZON-AES") == "Amazon (AMAZON-AES, cloud)"
    assert len(table) == 6  # IANA.ORG and the overlapping range are left out


def test_providers_are_matched_on_whole_names() -> None:
    assert classify("AMAZON-02") == ("Amazon", CLOUD)
    assert classify("Amazon Data Services Ireland Ltd") == ("Amazon", CLOUD)
    assert classify("AMAZONIA TELECOMUNICACOES LTDA") == ("AMAZONIA TELECOMUNICACOES LTDA", NETWORK)
    assert classify("GOOGLE-FIBER") == ("GOOGLE-FIBER", NETWORK)
    assert classify("MICROSOFT-CORP-MSN-AS-BLOCK") == ("Microsoft", CLOUD)
    assert classify("FASTLY") == ("Fastly", CDN)


def test_table_round_trips_through_deterministic_npz() -> None:
    table = small_table()
    first = npz_bytes(table.arrays())
    assert first == npz_bytes(small_table().arrays())
    with np.load(io.BytesIO(first), allow_pickle=False) as arrays:
        loaded = NetworkTable.of_arrays(arrays)
    ips = ["52.216.1.1", "1.1.1.1", "8.8.8.8"]
    assert loaded.owners(ips).name.tolist() == table.owners(ips).name.tolist()
    assert loaded.source == "test ranges"
    with pytest.raises(NetworkTableError, match=r"lacks 'networks.starts'.*pipeline.network_table"):
        NetworkTable.of_arrays({}, where="x.npz")


def test_bundled_geolite_table_knows_the_clouds_the_sample_lake_uses() -> None:
    table = network_table()
    ips = ["3.5.1.2", "16.182.3.4", "35.184.1.1", "20.36.1.1", "1.1.1.1", "73.1.2.3", "10.1.2.3", "2600:1700::1"]
    owners = table.owners(ips)
    described = [table.describe(int(o), str(n)) for o, n in zip(owners.organisation, owners.name, strict=True)]
    assert described[0].startswith("Amazon (") and described[1].startswith("Amazon (")
    assert described[2] == "Google (GOOGLE-CLOUD-PLATFORM, cloud)"
    assert described[3] == "Microsoft (MICROSOFT-CORP-MSN-AS-BLOCK, cloud)"
    assert described[4] == "Cloudflare (CLOUDFLARENET, cdn)"
    assert described[5] == "COMCAST-7922 (network)"
    assert described[6] == ""
    assert described[7] == "ATT-INTERNET4 (network)"
    assert "GeoLite2" in table.source


HISTORY = [
    ("111122223333/i-app#client:web", "52.216.1.1"),
    ("111122223333/i-app#client:web", "52.216.7.9"),
    ("111122223333/i-batch#client:web", "52.216.1.1"),
    ("111122223333/i-batch#client:web", "1.1.1.1"),
]


def _memory(table: NetworkTable | None) -> Memory:
    entities = [e for e, _ in HISTORY]
    pairs = Pairs.of(entities, [ip for _, ip in HISTORY], [DAY_MS * (i + 1) for i in range(len(HISTORY))])
    return Memory.build(pairs, with_group=True, ownership=Ownership(table, None) if table is not None else None)


def test_novelty_caps_a_known_owner_and_leaves_a_new_one_to_its_prefix() -> None:
    ips = ["54.231.9.9", "52.217.0.1", "53.0.0.1", "34.64.1.1", "1.1.1.1"]
    entities = ["111122223333/i-app#client:web"] * len(ips)
    with_owners = _memory(small_table()).nearest(entities, ips)
    plain = _memory(None).nearest(entities, ips)
    prefix_only = novelty(plain.nearest, ips)
    owned = novelty(with_owners.nearest, ips, with_owners.organisation, with_owners.owner_known)
    # 54.231.9.9: a /16 of Amazon the app never used: capped; 52.217.0.1 shares /15, already below the cap
    assert prefix_only[0] > KNOWN_OWNER_NOVELTY and owned[0] == KNOWN_OWNER_NOVELTY
    assert owned[1] == prefix_only[1] < KNOWN_OWNER_NOVELTY
    assert owned[2] == prefix_only[2]  # no owner known (unannounced): prefixes alone
    assert owned[3] == prefix_only[3] > KNOWN_OWNER_NOVELTY  # Google: never talked to, by the app or its peers
    assert with_owners.owner_known.tolist() == [True, True, False, False, True]  # Cloudflare: known to its peer
    assert not plain.owner_known.any() and (plain.organisation == -1).all()


def test_detector_artifact_keeps_the_table_and_the_evidence_names_the_owner(tmp_path: Path) -> None:
    entities = [e for e, _ in HISTORY] * 4
    ips = [ip for _, ip in HISTORY] * 4
    times = [DAY_MS * day + i for day in range(4) for i in range(len(HISTORY))]
    pairs = Pairs.of(entities, ips, times)
    detector = Detector.fit(pairs, None, 3 * DAY_MS, DetectorSettings(min_history_days=1), small_table())
    save_detector(detector, tmp_path / "detector.npz")
    loaded, _ = load_detector(tmp_path / "detector.npz")
    query = (["111122223333/i-app#client:web"] * 2, ["34.64.1.1", "54.231.9.9"])
    before = detector.score(*query, None)
    after = loaded.score(*query, None)
    assert after["owner_known"].tolist() == before["owner_known"].tolist() == [False, True]
    assert after["novelty"].tolist() == before["novelty"].tolist()
    assert after["novelty"][0] > KNOWN_OWNER_NOVELTY == after["novelty"][1]
    evidence = gather(loaded.memory, *query)
    assert evidence[0].owner == "Google (GOOGLE-CLOUD-PLATFORM, cloud)" and not evidence[0].owner_known
    sentence = describe(query[0][0], "34.64.1.1", evidence[0])
    assert sentence.endswith(
        "34.64.1.1 belongs to Google (GOOGLE-CLOUD-PLATFORM, cloud): the first connection to that owner for this "
        "workload and its peers."
    )
    assert "which this workload or its peers already talked to" in describe(query[0][0], "54.231.9.9", evidence[1])


def test_without_the_setting_the_table_is_ignored() -> None:
    entities = [e for e, _ in HISTORY] * 3
    pairs = Pairs.of(entities, [ip for _, ip in HISTORY] * 3, [DAY_MS * (i // 4) + i for i in range(12)])
    settings = DetectorSettings(min_history_days=1, use_networks=False)
    detector = Detector.fit(pairs, None, 2 * DAY_MS, settings, small_table())
    assert detector.memory.ownership is None


def test_internal_peers_are_calibrated_apart_from_public_ones() -> None:
    settings = DetectorSettings()
    keys, roles = novelty_keys(["a/i-1#client:db", "a/i-1#client:web"], ["10.1.1.1", "52.216.1.1"], settings)
    assert keys == ["internal/a/i-1#client:db", "a/i-1#client:web"]
    assert roles == ["internal/client:db", "client:web"]
    together = novelty_keys(["a/i-1#client:db"], ["10.1.1.1"], DetectorSettings(internal_apart=False))
    assert together == (["a/i-1#client:db"], ["client:db"])
    # a web server meets new public clients every day; a database meets the same internal clients: the public
    # clients' novelty must not make the database's first client from another network look ordinary
    entities: list[str] = []
    ips: list[str] = []
    times: list[int] = []
    for day in range(6):
        for client in range(20):
            entities.append("a/i-web#server:web")
            ips.append(f"{24 + day}.{client}.1.1")
            times.append(day * DAY_MS + client)
        for internal_client in ("10.1.0.5", "10.1.0.6"):
            entities.append("a/i-db#server:db")
            ips.append(internal_client)
            times.append(day * DAY_MS + 50)
    pairs = Pairs.of(entities, ips, times)
    query = (["a/i-db#server:db"], ["10.9.0.5"])
    apart = Detector.fit(pairs, None, 5 * DAY_MS, DetectorSettings(min_history_days=1), small_table())
    mixed = Detector.fit(
        pairs, None, 5 * DAY_MS, DetectorSettings(min_history_days=1, internal_apart=False), small_table()
    )
    assert "internal/server" in apart.novelty_table.by_side and "internal/server" not in mixed.novelty_table.by_side
    assert apart.score(*query, None)["novelty_surprisal"][0] > mixed.score(*query, None)["novelty_surprisal"][0]
