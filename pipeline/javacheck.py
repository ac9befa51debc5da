"""Check that Java 17+ is installed before anything starts Spark, and say how to install it if not."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

MINIMUM_JAVA = 17
INSTALL_HINT = (
    "install Java 17 or newer: Debian/Ubuntu `sudo apt-get install -y openjdk-17-jre-headless`, "
    "macOS `brew install openjdk@17`, or set JAVA_HOME to an existing JDK 17+"
)


def parse_java_major(version_output: str) -> int | None:
    """The major version from `java -version` output (`"17.0.15"`, `"1.8.0_392"`), or None."""
    match = re.search(r'version "(\d+)(?:\.(\d+))?', version_output)
    if match is None:
        return None
    major = int(match.group(1))
    if major == 1 and match.group(2) is not None:
        return int(match.group(2))
    return major


def java_problem() -> str | None:
    """None when a usable Java is on PATH; otherwise what is wrong and how to fix it."""
    java = shutil.which("java")
    if java is None:
        return f"Java was not found on PATH; Spark needs it. Fix: {INSTALL_HINT}"
    try:
        completed = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"`{java} -version` failed ({error}). Fix: {INSTALL_HINT}"
    major = parse_java_major(completed.stderr + completed.stdout)
    if major is None or major < MINIMUM_JAVA:
        found = (completed.stderr or completed.stdout).splitlines()[:1]
        seen = found[0] if found else "an unreadable version"
        return f"Spark here needs Java {MINIMUM_JAVA}+, found {seen} at {java}. Fix: {INSTALL_HINT}"
    return None


def main() -> int:
    problem = java_problem()
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
