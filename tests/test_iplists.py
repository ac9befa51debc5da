"""Trusted and threat lists (issue 28, item 2): GuardDuty's plain-text format, read as AWS reads it, applied by the
monitor (trusted wins), re-read every few minutes, named in the template."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.handoff.artifacts import ArtifactLayout
from scripts.monitor.findings import Finding
from scripts.monitor.iplists import AnalystLists, IpList
from scripts.monitor.list_loader import LIST_TTL_SECONDS, ListLoader, MissingListError
from scripts.monitor.listed_findings import apply_lists
from scripts.monitor.settings import MonitorConfigError, Settings
from scripts.monitor.store import ObjectStore
from tests.cfn import load_template, role_statements

INTEL = """# intel team, 2026-12-01
185.220.101.0/24   # exit nodes
45.83.64.1
10.0.0.7/8
2001:db8::/32
not-an-address
"""


def test_a_list_reads_addresses_and_cidrs_as_guardduty_does_and_counts_what_it_cannot() -> None:
    listed = IpList.parse("intel", INTEL)
    assert [ip in listed for ip in ("185.220.101.7", "45.83.64.1", "45.83.64.2", "10.200.1.1", "11.0.0.1")] == [
        True,
        True,
        False,
        True,  # 10.0.0.7/8 is 10.0.0.0/8: host bits ignored
        False,
    ]
    assert "2001:db8:1::5" in listed and "::ffff:45.83.64.1" in listed and "2001:db9::1" not in listed
    assert "garbage" not in listed
    assert listed.skipped == ("not-an-address",) and len(listed) == 4
    mapped = IpList.parse("m", "\ufeff::ffff:198.51.100.0/120\r\n")  # a BOM, CRLF, an IPv4-mapped network
    assert "198.51.100.7" in mapped and "::ffff:198.51.100.7" in mapped and not mapped.skipped


def _make(entity: str, ip: str, value: float) -> Finding:
    return Finding(entity, ip, value, 0.0, "v1", "s3://lake/o", 0, "111122223333", "us-east-1")


def test_a_threat_listed_pair_is_high_new_or_not_and_a_trusted_address_makes_no_finding() -> None:
    """Three pairs: a known one to a threat-listed address (no finding of its own: High, the list named), a new one
    already flagged whose address is trusted (dropped), one both trusted and threat-listed (trusted wins)."""
    lists = AnalystLists.of(
        [IpList.parse("partners", "203.0.113.0/24\n198.51.100.9\n")],
        [IpList.parse("intel", "185.220.101.0/24\n198.51.100.9\n")],
    )
    entity = "111122223333/i-app#client:web"
    pairs = [(entity, "185.220.101.7"), (entity, "203.0.113.5"), (entity, "198.51.100.9"), (entity, "52.94.0.1")]
    flagged = [_make(entity, "203.0.113.5", 0.2), _make(entity, "198.51.100.9", 0.3), _make(entity, "52.94.0.1", 0.4)]
    listed = apply_lists(flagged, lists, pairs, [0.1, 0.2, 0.3, 0.4], _make)
    assert [(f.ip, f.severity) for f in listed.findings] == [("52.94.0.1", "Medium"), ("185.220.101.7", "High")]
    threat = listed.findings[1]
    assert threat.evidence["threat_list"] == "intel" and threat.score == 0.1
    assert threat.why.startswith("185.220.101.7 is on the threat list intel. The pair is not new")
    assert (listed.trusted, listed.threat_listed) == (2, 1)
    assert apply_lists(flagged, AnalystLists(), pairs, [0.0] * 4, _make).findings == flagged


def test_the_lists_are_read_from_the_artifacts_again_after_a_few_minutes(tmp_path: Path) -> None:
    settings = Settings(endpoint="e", artifact_uri="s3://artifacts/a", threat_lists=("intel",))
    store = ObjectStore(root=tmp_path)
    uri = ArtifactLayout(settings.artifact_uri).analyst_list("threat", "intel")
    assert uri == "s3://artifacts/a/lists/threat/intel.txt"
    now = [1000.0]
    loader = ListLoader(settings, store, clock=lambda: now[0])
    with pytest.raises(MissingListError, match=r"seclake lists put threat intel FILE"):
        loader.current()
    store.put("artifacts", "a/lists/threat/intel.txt", b"# caf\xe9 (cp1252)\n185.220.101.0/24\n")  # not UTF-8
    assert "185.220.101.7" in loader.current().threat[0]
    store.put("artifacts", "a/lists/threat/intel.txt", b"45.83.64.1\n")
    now[0] += LIST_TTL_SECONDS - 1
    assert "185.220.101.7" in loader.current().threat[0]  # still the copy read a moment ago
    now[0] += 1
    assert "185.220.101.7" not in loader.current().threat[0] and "45.83.64.1" in loader.current().threat[0]
    assert ListLoader(Settings(endpoint="e", artifact_uri="s3://a/b"), store).current() == AnalystLists()


def test_the_function_reads_the_lists_the_template_names_and_may_read_only_those() -> None:
    template = load_template()
    variables = template["Resources"]["MonitorFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["TRUSTED_LISTS"] == "!Ref TrustedListNames"
    assert variables["THREAT_LISTS"] == "!Ref ThreatListNames"
    [statement] = [s for s in role_statements(template) if s.get("Sid") == "ReadAnalystLists"]
    assert statement["Action"] == "s3:GetObject"
    assert statement["Resource"] == "!Sub arn:${AWS::Partition}:s3:::${ArtifactBucket}/${ArtifactPrefix}/lists/*"
    environment = {"ENDPOINT_NAME": "e", "ARTIFACT_URI": "s3://a/b", "TRUSTED_LISTS": "partners, scanners"}
    assert Settings.from_environment(environment).trusted_lists == ("partners", "scanners")
    with pytest.raises(MonitorConfigError, match=r"THREAT_LISTS: '\.\./x' is not a list name"):
        Settings.from_environment({**environment, "THREAT_LISTS": "../x"})


def test_seclake_lists_put_checks_the_file_and_writes_it_where_the_local_monitor_reads_it(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pipeline.cli import app

    listed = tmp_path / "intel.txt"
    listed.write_text(INTEL)
    env = {"SECLAKE_HOME": str(tmp_path / "home"), "COLUMNS": "200"}
    result = CliRunner().invoke(app, ["lists", "put", "threat", "intel", str(listed)], env=env)
    assert result.exit_code == 0, result.output
    assert "threat list intel: 4 ranges to s3://" in result.output and "1 lines skipped" in result.output
    assert "add intel to detection.threat_lists" in result.output
    [written] = list((tmp_path / "home" / "s3").rglob("lists/threat/intel.txt"))
    assert written.read_text() == INTEL
    wrong = CliRunner().invoke(app, ["lists", "put", "allow", "intel", str(listed)], env=env)
    assert "list kind 'allow': give one of trusted, threat" in str(wrong.exception)
    clean = tmp_path / "partners.txt"
    clean.write_text("203.0.113.0/24\n")
    put = CliRunner().invoke(app, ["lists", "put", "trusted", "partners", str(clean)], env=env)
    assert put.exit_code == 0, put.output
    assert "trusted list partners: 1 ranges to s3://" in put.output and "skipped" not in put.output
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing yet\n")
    refused = CliRunner().invoke(app, ["lists", "put", "trusted", "partners", str(empty)], env=env)
    assert "holds no IP address nor CIDR" in str(refused.exception)
