"""Names as evidence (issue 27, names): which names each account asked Route 53 for, and what a DNS answer says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from scripts.detect.artifact import detector_bytes, load_detector
from scripts.detect.detector import Detector
from scripts.detect.memory import Pairs
from scripts.detect.names import UNKNOWN, KnownNames
from scripts.detect.settings import DAY_MS, DetectorSettings
from scripts.monitor.findings import Finding
from scripts.monitor.flagging import FleetContext, Knowledge, findings_of
from scripts.monitor.ledger import SqliteLedger

ACCOUNT = "123456789012"
OTHER = "210987654321"
START_MS = 1_649_030_400_000  # 2022-04-04
DAY = "20220411"
RESOLVER = f"{ACCOUNT}/i-app#client:resolved"


def _names() -> KnownNames:
    """The account asks for deb.debian.org from the first day; another account asks for api.partner.io."""
    return KnownNames.of_rows(
        [ACCOUNT, OTHER, OTHER], ["deb.debian.org", "api.partner.io", "deb.debian.org"], [START_MS, START_MS + 5, 9]
    )


def test_a_names_first_sighting_is_known_per_account_and_across_the_organisation() -> None:
    names = _names()
    seen = names.sighting([ACCOUNT, ACCOUNT, ACCOUNT], ["deb.debian.org", "api.partner.io", "x7k2.workers.dev"])
    assert seen.account_first_ms.tolist() == [START_MS, UNKNOWN, UNKNOWN]
    assert seen.organisation_first_ms.tolist() == [9, START_MS + 5, UNKNOWN]
    earlier = names.before(START_MS)
    assert earlier.sighting([OTHER], ["deb.debian.org"]).account_first_ms.tolist() == [9]
    assert earlier.sighting([ACCOUNT], ["deb.debian.org"]).account_first_ms.tolist() == [UNKNOWN]


def _detector() -> Detector:
    """Seven days of DNS answers from 52.216.0.0/24 for the app server."""
    rows = [(RESOLVER, f"52.216.0.{k}", START_MS + day * DAY_MS + k) for day in range(7) for k in range(30)]
    pairs = Pairs.of([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    settings = DetectorSettings(use_model=False)
    return Detector.fit(pairs, None, START_MS + 6 * DAY_MS, settings, None, None, _names())


def test_a_dns_answer_finding_names_what_was_asked_and_a_name_the_account_asks_for_is_low(tmp_path: Path) -> None:
    """Three answers from addresses far from any the app server met: one of a name no account ever asked for
    (Medium, saying so), one of a name another account asks for (Medium, saying so), one of a name its account
    asks for since the first day (the name's addresses rotating: Low)."""
    detector = _detector()

    def make(entity: str, ip: str, value: float) -> Any:
        return Finding(entity, ip, value, 0.0, "v1", "s3://lake/dns", START_MS + 7 * DAY_MS, ACCOUNT, "us-east-1")

    pairs = [(RESOLVER, "104.21.9.9"), (RESOLVER, "172.67.1.1"), (RESOLVER, "151.101.2.132")]
    asked = ["x7k2.workers.dev", "api.partner.io", "deb.debian.org"]
    fleet = FleetContext(DAY, ACCOUNT, SqliteLedger(tmp_path / "state.sqlite"))
    found = {
        f.ip: f
        for f in findings_of(pairs, [0.0] * 3, make, Knowledge(detector.memory, detector), 0.0, fleet, None, asked)
    }
    new, partner, known = found["104.21.9.9"], found["172.67.1.1"], found["151.101.2.132"]
    assert (new.severity, new.evidence["query_name"], new.evidence["name_new_to_organisation"]) == (
        "Medium",
        "x7k2.workers.dev",
        "true",
    )
    assert new.why.endswith("Answered for x7k2.workers.dev, a name no account of the organisation asked for before.")
    assert partner.severity == "Medium"
    assert partner.why.endswith("a name other accounts asked for, never this one.")
    assert (known.severity, known.evidence["name_first_asked_in_account"]) == ("Low", "2022-04-04")
    assert known.why.endswith("Answered for deb.debian.org, which this account has asked for since 2022-04-04.")


def test_the_artifact_keeps_the_names(tmp_path: Path) -> None:
    detector = _detector()
    path = tmp_path / "detector.npz"
    path.write_bytes(detector_bytes(detector))
    loaded, _ = load_detector(path)
    assert loaded.names is not None
    first, organisation = loaded.name_sightings([RESOLVER, RESOLVER], ["deb.debian.org", None])
    assert first.tolist() == [START_MS, UNKNOWN] and organisation.tolist() == [9, UNKNOWN]
    assert not np.any(loaded.name_sightings([RESOLVER], None)[0] != UNKNOWN)


def test_a_flows_finding_names_the_new_name_its_address_was_answered_for_in_an_earlier_object(tmp_path: Path) -> None:
    """A Route 53 object answers 52.219.200.7 for a bucket name no account asked for (the answer's pair is a first
    meeting); the flow object read after it has the app server's first connection to that address: its finding says
    which name it was resolved from. An answer of a name the account asks for routinely is not recorded."""
    detector = _detector()
    book = SqliteLedger(tmp_path / "state.sqlite")
    fleet = FleetContext(DAY, ACCOUNT, book)
    bucket = "x7k2-backup.s3.ap-southeast-2.amazonaws.com"

    def make(entity: str, ip: str, value: float) -> Any:
        return Finding(entity, ip, value, 0.0, "v1", "s3://lake/o", START_MS + 7 * DAY_MS, ACCOUNT, "us-east-1")

    knowledge = Knowledge(detector.memory, detector)
    answers = [(RESOLVER, "52.219.200.7"), (RESOLVER, "151.101.2.132")]
    findings_of(answers, [0.0, 0.0], make, knowledge, 0.0, fleet, None, [bucket, "deb.debian.org"])
    assert book.resolved(DAY, [f"{ACCOUNT}|52.219.200.7", f"{ACCOUNT}|151.101.2.132"]) == {
        f"{ACCOUNT}|52.219.200.7": bucket
    }
    flow = f"{ACCOUNT}/i-app#client:web"
    [finding] = findings_of([(flow, "52.219.200.7")], [0.0], make, knowledge, 0.0, fleet, None, [None])
    assert finding.evidence["resolved_name"] == bucket
    assert finding.evidence["name_new_to_organisation"] == "true"
    assert finding.why.endswith(
        f"Resolved today from {bucket}: this account never asked for that name before, nor did any account of the "
        "organisation."
    )
