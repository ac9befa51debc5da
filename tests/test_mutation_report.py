"""`make mutants`' report: mutmut's results grouped per file, equivalents counted apart, survivors listed."""

from __future__ import annotations

from pathlib import Path

from benchmarks.mutation_report import parse_results, read_equivalent, report

RESULTS = """\
    scripts.detect.gate.x_judge__mutmut_1: killed
    scripts.detect.gate.x_judge__mutmut_2: survived
    scripts.detect.gate.x_judge__mutmut_3: timeout
    scripts.detect.gate.x_judge__mutmut_4: survived
    scripts.monitor.flagging.x_findings_of__mutmut_1: not checked
    scripts.detect.calibration.xǁTailTableǁsurprisal__mutmut_13: killed
warning: not a result
"""


def test_results_are_counted_per_file_with_equivalents_apart_and_the_rest_listed(tmp_path: Path) -> None:
    equivalent = tmp_path / "equivalent.txt"
    equivalent.write_text("# mutant reason\nscripts.detect.gate.x_judge__mutmut_4 only the message's wording\n")
    statuses = parse_results(RESULTS)
    assert len(statuses) == 6 and statuses["scripts.detect.calibration.xǁTailTableǁsurprisal__mutmut_13"] == "killed"
    table, unjudged = report(statuses, read_equivalent(equivalent))
    assert unjudged == ["scripts.detect.gate.x_judge__mutmut_2"]
    rows = {line.split()[0]: line.split()[1:] for line in table.splitlines()[1:]}
    # mutants, killed (a timeout counts), equivalent, survived, not run, kill rate over killed + survived
    assert rows["scripts/detect/gate.py"] == ["4", "2", "1", "1", "0", "66.7%"]
    assert rows["scripts/monitor/flagging.py"] == ["1", "0", "0", "0", "1", "-"]
    assert rows["scripts/detect/calibration.py"] == ["1", "1", "0", "0", "0", "100.0%"]
