"""Analysts' verdicts: the file, the pairs a finding stands for, what the next detector learns from them, the Security
Hub workflow's function, and the production precision in detection.json and report.html."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from moto import mock_aws

from scripts.detect.detector import Detector
from scripts.detect.feedback import apply_verdicts, production_days
from scripts.detect.memory import Pairs
from scripts.detect.settings import DAY_MS, DetectorSettings
from scripts.handoff.artifacts import ArtifactLayout
from scripts.handoff.detection import DetectionReport
from scripts.handoff.verdicts import (
    BENIGN,
    FORMAT_FILE,
    TRUE_POSITIVE,
    Verdict,
    VerdictError,
    VerdictsRead,
    format_note,
    read_verdicts,
)
from scripts.modelquality.report_html import feedback_html
from scripts.monitor.feedback import handler, verdicts_of_event
from scripts.monitor.findings import GENERATOR_ID, Finding, asff, finding_pairs
from tests.cfn import load_template, role_statements
from tests.handoffs import detection

APP = "111122223333/i-app#client:web"
DECIDED = dt.datetime(2026, 12, 6, 9, 30, tzinfo=dt.UTC)


def _verdict(uid: str, verdict: str, pairs: list[tuple[str, str]], day: str = "19700107", **kw: Any) -> Verdict:
    return Verdict.of(uid, verdict, day, "111122223333", pairs, kw.pop("decided_at", DECIDED), **kw)


def test_a_verdict_file_round_trips_and_a_bad_one_is_skipped_and_named(tmp_path: Path) -> None:
    kept = _verdict("ab" * 16, BENIGN, [(APP, "203.0.113.9")], note="partner VPN, change 4411", author="ana")
    changed_mind = _verdict(
        "ab" * 16, TRUE_POSITIVE, [(APP, "203.0.113.9")], decided_at=DECIDED - dt.timedelta(hours=1)
    )
    for verdict in (kept, changed_mind):  # the earlier decision written last: the later one still counts
        (tmp_path / verdict.file_name).parent.mkdir(exist_ok=True)
        (tmp_path / verdict.file_name).write_text(verdict.dumps())
    assert kept.file_name == f"{'ab' * 16}/20261206T093000Z-unknown.json"
    (tmp_path / FORMAT_FILE).write_bytes(format_note())  # never a verdict
    (tmp_path / f"{'cd' * 16}.json").write_text('{"finding_uid": "' + "cd" * 16 + '", "verdict": "maybe"}')
    (tmp_path / f"{'ef' * 16}.json").write_text("not json")
    read = read_verdicts(tmp_path)
    assert read.verdicts == [kept]
    assert read.verdicts[0].note == "partner VPN, change 4411" and read.verdicts[0].decided_at == "2026-12-06T09:30:00Z"
    assert sorted(reason.split(":")[0] for reason in read.skipped) == [f"{'cd' * 16}.json", f"{'ef' * 16}.json"]
    assert read_verdicts(tmp_path / "missing") == VerdictsRead()


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"verdict": "maybe"}, "give one of true-positive, benign"),
        ({"finding_uid": "../etc"}, "is not a finding's uid"),
        ({"day": "2026-12-06"}, "must be YYYYMMDD"),
        ({"pairs": []}, "at least one"),
    ],
)
def test_what_is_not_a_verdict_is_refused_with_the_value(changes: dict[str, Any], named: str) -> None:
    fields = {"finding_uid": "ab" * 16, "verdict": BENIGN, "day": "20261206", "pairs": [[APP, "203.0.113.9"]]}
    with pytest.raises(VerdictError, match=named):
        Verdict(**{**fields, **changes}, account="111122223333", decided_at="2026-12-06T09:30:00Z")


def test_a_grouped_finding_stands_for_each_of_its_pairs() -> None:
    fleet = {"fleet_entities": f"{APP},111122223333/i-web#client:web", "workloads": "i-app,i-web"}
    assert finding_pairs("111122223333/*", "198.51.100.4", fleet) == [
        (APP, "198.51.100.4"),
        ("111122223333/i-web#client:web", "198.51.100.4"),
    ]
    assert finding_pairs(APP, "10.0.0.1", {"sweep_addresses": "10.0.0.1,10.0.0.2"}) == [
        (APP, "10.0.0.1"),
        (APP, "10.0.0.2"),
    ]
    tunnel = {"tunnel_addresses": "198.51.100.7,198.51.100.8"}  # as Security Hub and the findings' table carry it
    assert finding_pairs(APP, "198.51.100.7", tunnel) == [(APP, "198.51.100.7"), (APP, "198.51.100.8")]
    assert finding_pairs(APP, "203.0.113.9", {"network_owner": "x"}) == [(APP, "203.0.113.9")]
    assert finding_pairs("111122223333/*", "198.51.100.4", {"workloads": "i-app"}) == []  # written before its members


def _history() -> Pairs:
    """An app reaching S3's rotating addresses for seven days, and an attacker's address every day since day 2."""
    rows = []
    for day in range(7):
        for index in range(40):
            rows.append((APP, f"52.{216 + index % 2}.{(day * 7 + index) % 256}.{index}", day * DAY_MS + index))
        if day >= 2:
            rows.append((APP, "185.220.101.7", day * DAY_MS + 500))
    return Pairs.of([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])


def _flagged(history: Pairs, acknowledged: Pairs | None, pairs: list[tuple[str, str]]) -> list[bool]:
    detector = Detector.fit(history, None, 6 * DAY_MS, DetectorSettings(use_model=False), acknowledged=acknowledged)
    scored = detector.score([e for e, _ in pairs], [ip for _, ip in pairs], None)
    return [bool(flag) for flag in scored["flagged"]]


def test_a_true_positive_leaves_the_history_and_a_benign_pair_becomes_known() -> None:
    """The attacker's address had been in the history for five days, so the detector knew it; after the analyst's
    true-positive verdict it is new again. The partner's address is flagged until the analyst calls it benign."""
    history = _history()
    attacker, partner = (APP, "185.220.101.7"), (APP, "203.0.113.9")
    neighbour = ("111122223333/i-web#client:web", "185.220.101.9")  # the attacker's /24: never learned as benign
    assert _flagged(history, None, [attacker, partner]) == [False, True]
    read = VerdictsRead(
        [
            _verdict("aa" * 16, TRUE_POSITIVE, [attacker]),
            _verdict("bb" * 16, BENIGN, [partner, (APP, "not-an-address"), neighbour], day="19700108"),
            _verdict("cc" * 16, BENIGN, [attacker], day="19700101"),  # an older finding's verdict: the positive wins
        ]
    )
    applied = apply_verdicts(history, read, "19700107")
    assert len(applied.history) == len(history) - 5
    assert list(zip(applied.acknowledged.entity, applied.acknowledged.ip, strict=True)) == [partner]
    assert applied.acknowledged.time.tolist() == [int(history.time.max())]  # its day is after the history's end
    assert _flagged(applied.history, applied.acknowledged, [attacker, partner]) == [True, False]
    record = applied.record
    assert (record.verdicts, record.benign_pairs, record.true_positive_pairs, record.history_rows_removed) == (
        3,
        1,
        1,
        5,
    )
    assert record.skipped == [
        f"{'bb' * 16}: 'not-an-address' is not an IP address",
        f"{'bb' * 16}: 185.220.101.9 is in a true positive's /24: not learned",
    ]
    # the production window is the seven days up to the one after the window: 19700101 falls outside it
    assert record.production_days == ["19700102", "19700108"] == production_days("19700107")[::6]
    assert (record.production_true_positives, record.production_benign, record.production_precision) == (1, 1, 0.5)


def test_no_verdict_changes_nothing_and_says_the_precision_is_unknown() -> None:
    history = _history()
    applied = apply_verdicts(history, VerdictsRead(), "19700107")
    assert applied.history is history and len(applied.acknowledged) == 0
    assert applied.record.production_precision is None
    assert "not known: no verdict" in feedback_html(applied.record)


def test_the_production_precision_reaches_detection_json_and_the_report() -> None:
    read = VerdictsRead([_verdict("aa" * 16, TRUE_POSITIVE, [(APP, "185.220.101.7")])] * 3)
    record = apply_verdicts(_history(), read, "19700107").record
    report = detection(feedback=record)
    again = DetectionReport.from_json(json.loads(report.dumps()), "detection.json")
    assert again.feedback == record and again.feedback.production_precision == 1.0
    assert "<b>1.000</b> (3 true positives of 3 verdicts)" in feedback_html(record)


def _finding(**changes: Any) -> Finding:
    base = Finding(APP, "203.0.113.9", -0.4, 0.0, "v1", "s3://lake/o", 1_764_979_200_000, "111122223333", "us-east-1")
    return Finding(**{**base.__dict__, **changes})


AUTOMATION = "arn:aws:securityhub:us-east-1:999988887777:automation-rule/a1b2c3d4-5678-90ab-cdef-EXAMPLE11111"


def _event(findings: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": "e-1",
        "time": "2026-12-06T11:15:00Z",
        "source": "aws.securityhub",
        "detail-type": "Security Hub Findings - Imported",
        "detail": {"findings": findings},
    }


def _worked(document: dict[str, Any], status: str, note: str = "") -> dict[str, Any]:
    """The finding as Security Hub sends it after an analyst's BatchUpdateFindings."""
    extra = {
        "Note": {"Text": note, "UpdatedBy": "arn:aws:iam::999988887777:user/ana", "UpdatedAt": "2026-12-06T10:00:00Z"}
    }
    return {**document, "Workflow": {"Status": status}, **(extra if note else {})}


def test_the_workflow_rule_sends_our_decided_findings_to_a_function_that_may_only_write_verdicts() -> None:
    template = load_template()
    resources = template["Resources"]
    pattern = resources["FindingWorkflowRule"]["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.securityhub"]
    assert pattern["detail-type"] == ["Security Hub Findings - Imported"]
    assert pattern["detail"] == {
        "findings": {"GeneratorId": [GENERATOR_ID], "Workflow": {"Status": ["RESOLVED", "SUPPRESSED"]}}
    }
    assert resources["VerdictsFunction"]["Properties"]["Handler"] == "scripts.monitor.feedback.handler"
    [write, *_] = role_statements(template, "VerdictsRole")
    assert write["Action"] == "s3:PutObject" and write["Resource"].endswith("/${ArtifactPrefix}/feedback/verdicts/*")


def test_an_analysts_workflow_decision_becomes_the_verdict_file_the_next_run_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sweep = _finding(evidence={"sweep_addresses": "203.0.113.9,203.0.113.10"}, event_day="20261205")
    plain = _finding(ip="198.51.100.4", event_day="20261205")
    other = {**asff([plain], "999988887777", "us-east-1", DECIDED)[0], "GeneratorId": "guardduty", "Id": "x"}
    [sweep_doc, plain_doc] = asff([sweep, plain], "999988887777", "us-east-1", DECIDED)
    assert sweep_doc["ProductFields"]["sweep_addresses"] == "203.0.113.9,203.0.113.10"
    event = _event(
        [
            _worked(sweep_doc, "SUPPRESSED", "our vulnerability scanner"),
            _worked(plain_doc, "RESOLVED"),
            _worked(other, "RESOLVED"),  # not ours: the rule would not send it, and the function ignores it
            _worked(plain_doc, "NOTIFIED"),  # no decision yet
            {**_worked(plain_doc, "RESOLVED"), "Id": "ff" * 16, "ProductFields": {}},  # no address: skipped, named
            {**_worked(plain_doc, "SUPPRESSED", "auto"), "Note": {"Text": "low", "UpdatedBy": AUTOMATION}},
        ]
    )
    found = verdicts_of_event(event, DECIDED)
    assert [(v.finding_uid, v.verdict) for v in found.verdicts] == [(sweep.uid, BENIGN), (plain.uid, TRUE_POSITIVE)]
    assert found.verdicts[0].pair_tuples == [(APP, "203.0.113.9"), (APP, "203.0.113.10")]
    assert (found.verdicts[0].note, found.verdicts[0].decided_at) == (
        "our vulnerability scanner",
        "2026-12-06T10:00:00Z",
    )
    assert found.verdicts[0].day == "20261205" and found.verdicts[0].account == "111122223333"
    assert found.verdicts[1].decided_at == "2026-12-06T11:15:00Z"  # no note: when Security Hub sent the change
    assert len(found.skipped) == 2 and "ff" * 16 in found.skipped[0] and "an automation rule" in found.skipped[1]
    assert verdicts_of_event({**event, "source": "aws.sagemaker"}, DECIDED).verdicts == []

    artifacts = "s3://artifacts-bucket/seclake-ipinsights"
    monkeypatch.setenv("ARTIFACT_URI", artifacts)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="artifacts-bucket")
        assert handler(event, None) == {"written": 2, "skipped": 2}
        assert handler(event, None) == {"written": 2, "skipped": 2}  # redelivered: the same files again
        folder = tmp_path / "verdicts"
        prefix = ArtifactLayout(artifacts).verdicts.removeprefix("s3://artifacts-bucket/")
        keys = [item["Key"] for item in s3.list_objects_v2(Bucket="artifacts-bucket", Prefix=prefix)["Contents"]]
        assert sorted(keys) == sorted(f"{prefix}/{v.file_name}" for v in found.verdicts)
        for key in keys:
            (folder / key.removeprefix(prefix + "/")).parent.mkdir(parents=True, exist_ok=True)
            (folder / key.removeprefix(prefix + "/")).write_bytes(
                s3.get_object(Bucket="artifacts-bucket", Key=key)["Body"].read()
            )
    read = read_verdicts(folder)
    assert read.skipped == [] and read.verdicts == sorted(found.verdicts, key=lambda v: (v.decided_at, v.finding_uid))
    assert read.pairs(BENIGN) == {(APP, "203.0.113.9"), (APP, "203.0.113.10")}


def test_a_fleet_change_carries_its_members_into_security_hub_within_the_field_limit() -> None:
    members = ",".join(f"111122223333/i-{n:05d}#client:web" for n in range(200))
    fleet = _finding(entity="111122223333/*", evidence={"fleet_entities": members, "workloads": "i-00000"})
    [document] = asff([fleet], "999988887777", "us-east-1", DECIDED)
    carried = document["ProductFields"]["fleet_entities"]
    assert (
        "sweep_addresses"
        not in asff([_finding(evidence={"sweep_addresses": "x" * 3000})], "1", "r", DECIDED)[0]["ProductFields"]
    )  # one item too long for the field: left out, never a value Security Hub refuses
    assert len(carried) <= 2048 and members.startswith(carried) and carried.endswith("#client:web")
    pairs = finding_pairs("111122223333/*", fleet.ip, document["ProductFields"])
    assert len(pairs) == carried.count(",") + 1 and all(e.endswith("#client:web") for e, _ in pairs)
    assert np.all([ip == fleet.ip for _, ip in pairs])


def test_the_listing_reads_each_findings_latest_verdict_from_the_bucket(tmp_path: Path) -> None:
    from pipeline.config import load_config
    from pipeline.verdict_store import bucket_verdicts, local_verdicts
    from scripts.monitor.store import ObjectStore

    config = load_config(environ={"SECLAKE_HOME": str(tmp_path)})
    earlier = _verdict("ab" * 16, TRUE_POSITIVE, [(APP, "203.0.113.9")], decided_at=DECIDED - dt.timedelta(days=1))
    later = _verdict("ab" * 16, BENIGN, [(APP, "203.0.113.9")], note="partner VPN")
    other = _verdict("cd" * 16, TRUE_POSITIVE, [(APP, "185.220.101.7")])
    bucket, _, prefix = ArtifactLayout(config.aws.artifact_uri).verdicts.removeprefix("s3://").partition("/")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=bucket)
        for verdict in (later, earlier, other):
            s3.put_object(Bucket=bucket, Key=f"{prefix}/{verdict.file_name}", Body=verdict.dumps().encode())
            ObjectStore(root=tmp_path / "s3").put(bucket, f"{prefix}/{verdict.file_name}", verdict.dumps().encode())
        assert bucket_verdicts(config, s3, ["ab" * 16, "ef" * 16]) == {"ab" * 16: later}
    assert local_verdicts(config, ["ab" * 16, "cd" * 16]) == {"ab" * 16: later, "cd" * 16: other}
