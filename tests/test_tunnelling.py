"""DNS tunnelling (issue 27, names): a burst of distinct long names under one domain the account never asked for."""

from __future__ import annotations

from typing import Any

import pyarrow.parquet as pq
import pytest

from scripts.detect.detector import Detector
from scripts.detect.memory import Pairs
from scripts.detect.names import KnownNames
from scripts.detect.settings import DAY_MS, DetectorSettings
from scripts.detect.tunnelling import NO_ADDRESS, DomainQueries, base_domain, collect, find_tunnels
from scripts.entity import account_of
from scripts.monitor.findings import Finding
from scripts.monitor.tunnel_findings import tunnels_of, with_tunnels
from scripts.ocsf.schemas import Source
from scripts.pairs.arrow_engine import queried_names
from scripts.pairs.mapping import mapping
from tests.conftest import FIXTURES

ACCOUNT = "123456789012"
ENTITY = f"{ACCOUNT}/i-app#client:resolved"
START_MS = 1_649_030_400_000  # 2022-04-04


def _hex(index: int, length: int = 40) -> str:
    return (f"{index:08x}" * 8)[:length]


def _queries(rows: list[tuple[str, str]]) -> dict[tuple[str, str], DomainQueries]:
    queries: dict[tuple[str, str], DomainQueries] = {}
    collect(queries, [e for e, _ in rows], [n for _, n in rows], [START_MS + i for i in range(len(rows))])
    return queries


@pytest.mark.parametrize(
    ("name", "domain"),
    [
        ("4a6f.t.example.com", "example.com"),
        ("4a6f.t.example.com.", "example.com"),
        ("x7.t.Example.co.uk", "example.co.uk"),
        ("bucket.s3.amazonaws.com", "amazonaws.com"),
        ("example.com", "example.com"),
        ("a.b.io", "b.io"),
    ],
)
def test_a_name_belongs_to_its_registered_domain(name: str, domain: str) -> None:
    assert base_domain(name) == domain


def test_a_burst_of_long_new_names_under_one_unknown_domain_is_a_tunnel() -> None:
    """60 hex names under a new domain: a tunnel. Not: 49 of them; 60 short names (a blocklist lookup); 60 long
    names under a domain the account asks for; 60 reverse lookups of IPv6 addresses (63-character labels)."""
    rows = (
        [(ENTITY, f"{_hex(i)}.t.x7q2.info") for i in range(60)]
        + [(ENTITY, f"{_hex(i)}.few.example.net") for i in range(49)]
        + [(ENTITY, f"{i}.2.0.192.zen.spamhaus.org") for i in range(60)]
        + [(ENTITY, f"{_hex(i)}.sophosxl.net") for i in range(60)]
        + [(ENTITY, f"{'.'.join(f'{i:032x}')}.ip6.arpa") for i in range(60)]
    )
    known = {(ACCOUNT, "sophosxl.net")}

    def known_domain(entity: str, domain: str) -> bool:
        return (account_of(entity), domain) in known

    tunnels = find_tunnels(_queries(rows), known_domain, 50, 20)
    assert [(t.entity, t.domain, t.names, t.median_subdomain_length) for t in tunnels] == [
        (ENTITY, "x7q2.info", 60, 42.0)
    ]
    assert tunnels[0].examples == tuple(sorted(f"{_hex(i)}.t.x7q2.info" for i in range(60))[:3])
    assert tunnels[0].first_ms == START_MS
    assert find_tunnels(_queries(rows), known_domain, 0, 20) == []  # 0 turns the rule off
    # one name however it is written: 30 names in three spellings are 30, not a tunnel; reverse zones in capitals
    spelled = [
        (ENTITY, f"{_hex(i)}.t.q9.xyz{end}".upper() if end == "" else f"{_hex(i)}.t.q9.xyz{end}")
        for i in range(30)
        for end in ("", ".")
    ]
    spelled += [(ENTITY, f"{_hex(i)}.T.Q9.XYZ") for i in range(30)]
    spelled += [(ENTITY, f"{'.'.join(f'{i:032x}')}.IP6.ARPA.") for i in range(60)]
    assert find_tunnels(_queries(spelled), known_domain, 50, 20) == []


def _detector(names: KnownNames) -> Detector:
    rows = [(ENTITY, f"52.216.0.{k}", START_MS + day * DAY_MS + k) for day in range(7) for k in range(30)]
    pairs = Pairs.of([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    return Detector.fit(pairs, None, START_MS + 6 * DAY_MS, DetectorSettings(use_model=False), None, None, names)


def _make(entity: str, ip: str, value: float) -> Finding:
    return Finding(entity, ip, value, 0.0, "v1", "s3://lake/dns", START_MS + 7 * DAY_MS, ACCOUNT, "us-east-1")


def test_a_tunnel_is_one_high_finding_that_takes_the_place_of_its_answers() -> None:
    """The tunnel's A answers (two Amazon addresses, each a Medium pair finding) fold into one High finding that
    names the domain, the count, examples and the addresses; another account's domain is said to be known to the
    organisation; a tunnel answered only by TXT records names no address."""
    names = KnownNames.of_rows(["210987654321"], ["www.x7q2.info"], [START_MS])
    detector = _detector(names)
    rows = [(ENTITY, f"{_hex(i)}.t.x7q2.info") for i in range(60)]
    rows += [(f"{ACCOUNT}/i-db#client:resolved", f"{_hex(i)}.z.q9.xyz") for i in range(55)]
    tunnels = tunnels_of(detector, _queries(rows))
    pairs = [(ENTITY, "52.219.200.7"), (ENTITY, "52.219.200.9"), (ENTITY, "8.8.8.8")]
    asked: list[str | None] = [f"{_hex(1)}.t.x7q2.info", f"{_hex(2)}.t.x7q2.info", "dns.google"]
    pair_findings = [_make(e, ip, 0.0) for e, ip in pairs]
    found = with_tunnels(pair_findings, tunnels, detector, pairs, [0.1, 0.2, 0.3], asked, _make)
    assert [(f.entity, f.ip, f.severity, f.tunnel) for f in found] == [
        (ENTITY, "8.8.8.8", "Medium", False),
        (ENTITY, "52.219.200.7", "High", True),
        (f"{ACCOUNT}/i-db#client:resolved", NO_ADDRESS, "High", True),
    ]
    tunnel, silent = found[1], found[2]
    # its id is the domain's: never the id of the pair's own finding, which an earlier object may have raised
    assert tunnel.uid != _make(ENTITY, "52.219.200.7", 0.1).uid
    assert silent.uid != _make(silent.entity, NO_ADDRESS, 0.0).uid
    assert tunnel.addresses == ["52.219.200.7", "52.219.200.9"]
    assert tunnel.evidence["tunnel_domain"] == "x7q2.info" and tunnel.evidence["tunnel_names"] == "60"
    assert tunnel.evidence["domain_new_to_organisation"] == "false"
    assert tunnel.score == 0.1 and tunnel.event_time_ms == START_MS
    assert "asked Route 53 for 60 distinct names under x7q2.info" in tunnel.description
    assert "another account of the organisation asks for it, this one never did" in tunnel.why
    assert "Answers: 52.219.200.7, 52.219.200.9." in tunnel.why
    assert "Answers: no address (TXT or NULL records only)." in silent.why
    assert silent.evidence["domain_new_to_organisation"] == "true"


def test_without_learnt_names_the_rule_is_off() -> None:
    rows = [(ENTITY, f"{_hex(i)}.t.x7q2.info") for i in range(60)]
    assert tunnels_of(_detector(None), _queries(rows)) == []  # type: ignore[arg-type]
    assert tunnels_of(None, _queries(rows)) == []


def test_every_route53_query_is_read_whether_answered_or_not() -> None:
    """The real Route 53 samples: each row's name, lower case without its final dot, and the entity as the role
    mapping's answer pairs name it, rows without an instance left out (the pairs have no entity for them either);
    flows have no queries."""
    rule = mapping("role").rule(Source.ROUTE53)
    seen: list[tuple[Any, ...]] = []
    for path in sorted((FIXTURES / "security-lake-v1" / "ROUTE53").glob("*.parquet")):
        table = queried_names(pq.read_table(path), 1, rule)
        seen += list(zip(*(table[c].to_pylist() for c in ("entity", "name")), strict=True))
    assert seen == [("111122223333/i-0d15cd0d3example#client:resolved", "15.3.4.32.in-addr.arpa")]
    flows = pq.read_table(next((FIXTURES / "security-lake-v1" / "VPC_FLOW").glob("*.parquet")))
    assert queried_names(flows, 1, mapping("role").rule(Source.VPC_FLOW)).num_rows == 0
