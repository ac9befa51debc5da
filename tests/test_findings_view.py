"""`seclake findings`: what the monitor wrote to the local lake's custom source, newest first, filtered, with why."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.findings_view import recent_findings
from scripts.monitor.findings import Finding, findings_key, ocsf_rows, parquet_bytes

DAY1, DAY2 = 1_764_374_400_000, 1_764_460_800_000  # 2025-11-29 and 2025-11-30, 00:00 UTC


def _finding(entity: str, ip: str, time_ms: int, account: str = "012345678901") -> Finding:
    return Finding(entity, ip, -9.0, -5.0, "v1", "s3://lake/obj", time_ms, account, "us-east-1", why=f"why {ip}")


def _write(root: Path, findings: list[Finding], source_object: str) -> None:
    for finding in findings:
        path = root / "aws-security-data-lake-us-east-1-x" / findings_key(finding, source_object)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(parquet_bytes(ocsf_rows([finding], 0)))


def test_newest_first_with_filters(tmp_path: Path) -> None:
    _write(tmp_path, [_finding("012345678901/i-1#client:web", "1.1.1.1", DAY1 + 5)], "a")
    _write(tmp_path, [_finding("012345678901/i-2#client:web", "2.2.2.2", DAY2 + 7)], "b")
    _write(tmp_path, [_finding("210987654321/i-1#server:admin", "3.3.3.3", DAY2 + 9, "210987654321")], "c")
    assert [r.ip for r in recent_findings(tmp_path)] == ["3.3.3.3", "2.2.2.2", "1.1.1.1"]
    assert [r.ip for r in recent_findings(tmp_path, entity="i-1")] == ["3.3.3.3", "1.1.1.1"]
    assert [r.ip for r in recent_findings(tmp_path, account="012345678901")] == ["2.2.2.2", "1.1.1.1"]
    assert [r.ip for r in recent_findings(tmp_path, day="20251129")] == ["1.1.1.1"]
    assert [r.ip for r in recent_findings(tmp_path, limit=1)] == ["3.3.3.3"]
    first = recent_findings(tmp_path, day="20251129")[0]
    assert first.time == "2025-11-29 00:00:00" and first.region == "us-east-1" and "why 1.1.1.1" in first.why


def test_the_command_prints_them_with_why(tmp_path: Path) -> None:
    _write(tmp_path / "s3", [_finding("012345678901/i-9#client:web", "9.9.9.9", DAY2)], "a")
    result = CliRunner().invoke(app, ["findings", "--entity", "i-9"], env={"SECLAKE_HOME": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert "9.9.9.9" in result.output and "why 9.9.9.9" in result.output
    empty = CliRunner().invoke(app, ["findings", "--entity", "i-none"], env={"SECLAKE_HOME": str(tmp_path)})
    assert "no findings" in empty.output
