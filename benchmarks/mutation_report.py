"""The kill rate of `mutmut run` per mutated file, and the surviving mutants not yet judged equivalent."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections import Counter, defaultdict
from pathlib import Path

EQUIVALENT_FILE = Path(__file__).with_name("equivalent_mutants.txt")
KILLED = {"killed", "timeout"}  # a mutant that hangs the tests is caught by them as surely as one that fails them
NOT_RUN = {"not checked", "skipped", "check was interrupted by user"}


def parse_results(text: str) -> dict[str, str]:
    """`mutmut results --all true` lines (`    scripts.x.x_f__mutmut_3: killed`) as {mutant: status}."""
    statuses: dict[str, str] = {}
    for line in text.splitlines():
        name, separator, status = line.strip().rpartition(": ")
        if separator and name.count(".") >= 2 and "__mutmut_" in name:
            statuses[name] = status
    return statuses


def read_equivalent(path: Path) -> dict[str, str]:
    """`<mutant> <why it cannot change behaviour>` per line; `#` starts a comment."""
    if not path.exists():
        return {}
    judged: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, _, why = line.partition(" ")
            judged[name] = why.strip()
    return judged


def module_of(mutant: str) -> str:
    """`scripts.detect.gate.x_judge__mutmut_9` -> `scripts/detect/gate.py`."""
    return mutant.rsplit(".", 1)[0].replace(".", "/") + ".py"


def report(statuses: dict[str, str], equivalent: dict[str, str]) -> tuple[str, list[str]]:
    """The table per file (kill rate over the mutants that ran, equivalent ones counted apart) and the survivors
    nobody has judged."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    unjudged: list[str] = []
    for mutant, status in sorted(statuses.items()):
        module = module_of(mutant)
        if status in KILLED:
            counts[module]["killed"] += 1
        elif status in NOT_RUN:
            counts[module]["not run"] += 1
        elif mutant in equivalent:
            counts[module]["equivalent"] += 1
        else:
            counts[module]["survived"] += 1
            unjudged.append(mutant)
    lines = [f"{'file':40} {'mutants':>8} {'killed':>7} {'equiv.':>7} {'survived':>9} {'not run':>8} {'kill rate':>10}"]
    for module, count in sorted(counts.items()):
        judged = count["killed"] + count["survived"]
        rate = f"{count['killed'] / judged:.1%}" if judged else "-"
        lines.append(
            f"{module:40} {sum(count.values()):>8} {count['killed']:>7} {count['equivalent']:>7} "
            f"{count['survived']:>9} {count['not run']:>8} {rate:>10}"
        )
    return "\n".join(lines), unjudged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", type=Path, help="saved `mutmut results --all true` output (default: run it)")
    args = parser.parse_args()
    if args.results is not None:
        text = args.results.read_text()
    else:
        mutmut = Path(sys.executable).with_name("mutmut")
        text = subprocess.run(
            [str(mutmut), "results", "--all", "true"], check=True, capture_output=True, text=True
        ).stdout
    table, unjudged = report(parse_results(text), read_equivalent(EQUIVALENT_FILE))
    print(table)
    print(f"\n{len(unjudged)} surviving mutants not judged equivalent in {EQUIVALENT_FILE.name}:")
    for mutant in unjudged:
        print(f"  {mutant}   (mutmut show {mutant})")


if __name__ == "__main__":
    main()
