"""Suppression rules (issue 28, item 1): GuardDuty's model. A finding a live rule matches is written Suppressed with
the rule named, never notified; an expired rule suppresses nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.cli.suppress_cmd import expiry_ms
from scripts.monitor.findings import SUPPRESSED, Finding, ocsf_rows
from scripts.monitor.rule_store import RULES_TTL_SECONDS, CachedRules, DynamoRules, SqliteRules
from scripts.monitor.suppression import RuleError, SuppressionRule, kind_of, matches, suppress
from tests.cfn import load_template, role_statements

NOW = 1_796_600_000_000
ENTITY = "111122223333/i-0scanner1#client:admin"


def _finding(ip: str = "10.1.2.3", entity: str = ENTITY, **evidence: str) -> Finding:
    return Finding(entity, ip, 0.1, 0.5, "v1", "s3://lake/o", NOW, "111122223333", "us-east-1", evidence=evidence)


def _rule(rule_id: str = "r1", expires_ms: int | None = None, **criteria: str) -> SuppressionRule:
    return SuppressionRule(rule_id, criteria, "the vulnerability scanner", "alice", NOW - 1000, expires_ms)


def test_every_criterion_must_match_globs_and_cidrs() -> None:
    finding = _finding(network_owner="Amazon (AMAZON-02, cloud)")
    assert matches(_rule(workload="i-0scanner*", ip="10.1.0.0/16"), finding)
    assert matches(_rule(role="client:*", owner="Amazon*", account="1111*", severity="Medium", kind="pair"), finding)
    assert not matches(_rule(workload="i-0scanner*", ip="10.2.0.0/16"), finding)
    assert not matches(_rule(role="server:*"), finding)
    sweep = _finding(sweep_addresses="10.9.0.1,10.1.2.3")
    assert kind_of(sweep) == "sweep" and matches(_rule(ip="10.1.2.3"), sweep)  # any address it lists
    with pytest.raises(RuleError, match=r"unknown criteria \['port'\]"):
        _rule(port="22")
    with pytest.raises(RuleError, match="no criteria"):
        _rule()
    with pytest.raises(RuleError, match=r"ip '10\.1\.x' is no address nor CIDR"):
        _rule(ip="10.1.x")
    with pytest.raises(RuleError, match=r"severity 'high'; allowed: Low, Medium, High"):
        _rule(severity="high")
    with pytest.raises(RuleError, match="give a reason"):
        SuppressionRule("r", {"ip": "10.0.0.1"}, " ", "a", 0)


def test_a_live_rule_marks_the_finding_suppressed_and_an_expired_one_nothing() -> None:
    findings = [_finding(), _finding("8.8.8.8")]
    rules = [_rule("r2", workload="i-0scanner*"), _rule("r1", expires_ms=NOW, ip="10.1.2.3")]
    before = suppress(findings, rules, NOW - 1)
    assert [f.status for f in before.findings] == [SUPPRESSED, SUPPRESSED] and before.suppressed == 2
    assert before.findings[0].evidence["suppression_rule"] == "r1"  # the first by id
    after = suppress(findings, rules, NOW)  # r1 has expired: r2 still matches both
    assert [f.evidence["suppression_rule"] for f in after.findings] == ["r2", "r2"]
    assert suppress(findings, [rules[1]], NOW).suppressed == 0
    [row] = ocsf_rows([before.findings[0]], NOW)
    assert (row["status"], row["status_id"], row["unmapped"]["suppression_reason"]) == (
        "Suppressed",
        3,
        "the vulnerability scanner",
    )


@pytest.mark.parametrize("kind", ["sqlite", "dynamodb"])
def test_the_rule_stores_keep_put_and_remove_rules(kind: str, tmp_path: Path) -> None:
    with mock_aws():
        if kind == "sqlite":
            store: Any = SqliteRules(tmp_path / "rules.sqlite")
        else:
            client = boto3.client("dynamodb", region_name="us-east-1")
            client.create_table(
                TableName="rules",
                KeySchema=[{"AttributeName": "rule_id", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "rule_id", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
            store = DynamoRules("rules", client)
        store.put(_rule("r1", expires_ms=NOW, ip="10.1.2.3"))
        store.put(_rule("r2", workload="i-0*", owner="Amazon*"))
        store.put(_rule("r1", ip="10.1.2.4"))  # replaced by id
        assert store.rules() == [_rule("r1", ip="10.1.2.4"), _rule("r2", workload="i-0*", owner="Amazon*")]
        assert store.remove("r1") and not store.remove("r1")
        broken = {"rule_id": "bad", "criteria": '{"port": "22"}', "reason": "x", "author": "a", "created_ms": "1"}
        if kind == "sqlite":
            with store._connect() as db:
                db.execute("INSERT INTO suppression_rules VALUES (?, ?, ?, ?, ?, ?)", [*broken.values(), ""])
        else:
            client.put_item(TableName="rules", Item={k: {"S": v} for k, v in broken.items()})
        assert [r.rule_id for r in store.rules()] == ["r2"]  # the malformed one skipped, the rest applied
        store.remove("bad")
        assert [r.rule_id for r in store.rules()] == ["r2"]
        now = [0.0]
        cached = CachedRules(store, clock=lambda: now[0])
        assert len(cached.rules()) == 1
        store.put(_rule("r3", ip="10.0.0.0/8"))
        now[0] = RULES_TTL_SECONDS - 1
        assert len(cached.rules()) == 1
        now[0] = RULES_TTL_SECONDS
        assert len(cached.rules()) == 2


def test_the_function_reads_the_rules_table_and_may_only_scan_it() -> None:
    template = load_template()
    variables = template["Resources"]["MonitorFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["SECLAKE_SUPPRESSION_TABLE"] == "!Ref SuppressionRulesTable"
    [statement] = [s for s in role_statements(template) if s.get("Sid") == "ReadSuppressionRules"]
    assert (statement["Action"], statement["Resource"]) == ("dynamodb:Scan", "!GetAtt SuppressionRulesTable.Arn")
    table = template["Resources"]["SuppressionRulesTable"]["Properties"]
    assert table["KeySchema"] == [{"AttributeName": "rule_id", "KeyType": "HASH"}]


def test_seclake_suppress_adds_lists_applies_and_removes_rules(tmp_path: Path) -> None:
    env = {"SECLAKE_HOME": str(tmp_path), "COLUMNS": "220"}
    runner = CliRunner()
    added = runner.invoke(
        app,
        [
            "suppress",
            "add",
            "--workload",
            "i-0scanner*",
            "--ip",
            "10.0.0.0/8",
            "--reason",
            "scanner",
            "--expires",
            "7d",
        ],
        env=env,
    )
    assert added.exit_code == 0, added.output
    rules = SqliteRules(tmp_path / "suppressions.sqlite").rules()
    assert [r.criteria for r in rules] == [{"ip": "10.0.0.0/8", "workload": "i-0scanner*"}]
    week = rules[0].expires_ms - rules[0].created_ms  # type: ignore[operator]
    assert abs(week - 7 * 86_400_000) < 5_000
    spec = tmp_path / "rules.yaml"
    spec.write_text(
        "- id: partner\n  ip: 203.0.113.0/24\n  account: 012345670123\n  reason: partner API\n  expires: 2027-01-01\n"
    )
    assert runner.invoke(app, ["suppress", "apply", str(spec)], env=env).exit_code == 0
    partner = next(r for r in SqliteRules(tmp_path / "suppressions.sqlite").rules() if r.rule_id == "partner")
    assert partner.criteria["account"] == "012345670123"  # YAML's octal reading would have made it 1402433619
    listed = runner.invoke(app, ["suppress", "list"], env=env)
    assert "partner" in listed.output and "2027-01-01 00:00:00 UTC" in listed.output
    assert runner.invoke(app, ["suppress", "remove", "partner"], env=env).exit_code == 0
    missing = runner.invoke(app, ["suppress", "remove", "partner"], env=env)
    assert "no suppression rule 'partner'" in str(missing.exception)
    bad = runner.invoke(app, ["suppress", "add", "--port", "22", "--reason", "x"], env=env)
    assert bad.exit_code != 0
    wrong = runner.invoke(app, ["suppress", "add", "--ip", "10.x", "--reason", "x"], env=env)
    assert "is no address nor CIDR" in str(wrong.exception)
    at = dt.datetime(2026, 12, 6, tzinfo=dt.UTC)
    assert expiry_ms("12h", at) == int((at + dt.timedelta(hours=12)).timestamp() * 1000)
    assert expiry_ms("2026-12-31T00:00:00+00:00", at) == int(
        dt.datetime(2026, 12, 31, tzinfo=dt.UTC).timestamp() * 1000
    )
