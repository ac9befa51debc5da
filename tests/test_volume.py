"""Large first uploads (issue 27, volume): what a workload sent to an address it never met, against its history."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from moto import mock_aws

from scripts.detect.artifact import detector_bytes, load_detector
from scripts.detect.detector import Detector
from scripts.detect.memory import Pairs
from scripts.detect.networks import AnnouncedRange, NetworkTable
from scripts.detect.settings import DAY_MS, DetectorSettings
from scripts.detect.volume import UploadLimits, in_words, large_uploads, upload_limit
from scripts.monitor.findings import Finding
from scripts.monitor.flagging import FleetContext, Knowledge, findings_of
from scripts.monitor.ledger import FindingLedger, SqliteLedger
from tests.test_monitor import _ledger

ACCOUNT = "123456789012"
START_MS = 1_649_030_400_000  # 2022-04-04
DAY = "20220411"
MB = 1_000_000
APP = f"{ACCOUNT}/i-app#client:web"
BACKUP = f"{ACCOUNT}/i-backup#client:web"
WEB = f"{ACCOUNT}/i-web#server:web"


def _row(entity: str, ip: str, day: int, sent: int) -> tuple[str, str, int, int]:
    return entity, ip, START_MS + day * DAY_MS + 1_000, sent


def _pairs(rows: list[tuple[str, str, int, int]]) -> Pairs:
    return Pairs.of([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows], [r[3] for r in rows])


def _history() -> list[tuple[str, str, int, int]]:
    """Seven days: the app server reaches its S3 addresses (52.216.0.0/24) every day and one new one a day, never
    sending more than 3 MB to a new one; the backup host sends 400 MB a day to a new S3 address (rotating storage
    endpoints); the web server answers a new client a day with 900 MB (its service, not an upload)."""
    rows = []
    for day in range(7):
        rows += [_row(APP, f"52.216.0.{k}", day, 200_000) for k in range(10)]
        rows.append(_row(APP, f"52.216.0.{100 + day}", day, (1 + day % 3) * MB))
        rows.append(_row(BACKUP, f"52.216.1.{day}", day, 400 * MB))
        rows.append(_row(WEB, f"81.2.69.{day}", day, 900 * MB))
    rows.append(_row(APP, "52.216.9.9", 0, 700 * MB))  # the window's first day: every address looks new there
    return rows


def _amazon() -> NetworkTable:
    network = ipaddress.ip_network("52.216.0.0/15")
    amazon = AnnouncedRange.of_network(int(network.network_address), network.prefixlen, "AMAZON-02", ipv4=True)
    return NetworkTable.of_ranges([amazon], "test ranges")


def _detector(settings: DetectorSettings | None = None) -> Detector:
    settings = settings or DetectorSettings(use_model=False)
    return Detector.fit(_pairs(_history()), None, START_MS + 6 * DAY_MS, settings, _amazon())


def test_each_workload_learns_its_largest_upload_to_an_address_on_the_day_it_met_it() -> None:
    """The app server's largest first upload is 3 MB: its daily traffic to known addresses and the window's first
    day do not count. The backup host's is 400 MB. A server's answers are not uploads. A new instance of the app
    server's role is judged by its peer group (the account's web clients: the backup host's 400 MB)."""
    limits = UploadLimits.learn(_pairs(_history()))
    assert limits is not None
    assert dict(zip(limits.entities.tolist(), limits.largest.tolist(), strict=True)) == {APP: 3 * MB, BACKUP: 400 * MB}
    established = np.array([True, True, True, False])
    new = f"{ACCOUNT}/i-new#client:web"
    reference = limits.reference([APP, BACKUP, WEB, new], established)
    assert reference[:2].tolist() == [3 * MB, 400 * MB]
    assert np.isnan(reference[2])
    assert reference[3] == 400 * MB
    assert UploadLimits.learn(Pairs.of([APP], ["52.216.0.1"], [START_MS])) is None  # a history without bytes
    per_event = UploadLimits.learn(_pairs([*_history(), _row(APP, "52.216.0.102", 2, 2 * MB)]))  # a day's rows add up
    assert per_event is not None and per_event.largest.tolist() == [5 * MB, 400 * MB]


def test_the_limit_is_ten_times_the_largest_first_upload_and_never_below_the_floor() -> None:
    settings = DetectorSettings()
    assert upload_limit(np.array([3 * MB, 400 * MB, np.nan]), settings).tolist() == [50 * MB, 4000 * MB, 50 * MB]
    sent = np.array([60 * MB, 60 * MB, 60 * MB, 60 * MB])
    reference = np.array([3 * MB, 3 * MB, 3 * MB, 400 * MB])
    novel = np.array([True, False, True, True])
    uploads = np.array([True, True, False, True])
    assert large_uploads(sent, reference, novel, uploads, settings).tolist() == [True, False, False, False]
    off = DetectorSettings(large_upload_bytes=0)
    assert not large_uploads(sent, reference, novel, uploads, off).any()
    assert [in_words(2 * 10**9), in_words(3_400_000), in_words(512)] == ["2.0 GB", "3.4 MB", "512 bytes"]


def test_two_gigabytes_to_a_new_address_of_a_provider_the_workload_uses_is_flagged_however_capped_its_novelty() -> None:
    """2 GB to an Amazon address the app server never met: Amazon is an owner it talks to, so novelty alone does not
    flag it; its volume does. The same bytes to an address it knows, a backup host's 2 GB (it uploads 400 MB to a
    new address every day), and 20 MB from the app server are not large first uploads."""
    detector = _detector()
    entities = [APP, APP, APP, BACKUP, APP]
    ips = ["52.217.40.7", "52.217.40.8", "52.216.0.3", "52.217.40.9", "52.217.40.10"]
    sent = np.array([2000 * MB, 0, 2000 * MB, 2000 * MB, 20 * MB])
    scored = detector.score(entities, ips, None, sent)
    assert scored["large_upload"].tolist() == [True, False, False, False, False]
    assert scored["flagged"].tolist() == [True, False, False, False, False]
    assert not detector.score(entities, ips, None)["flagged"].any()  # without bytes: the novelty is capped
    assert scored["upload_reference"][0] == 3 * MB


def test_the_artifact_keeps_the_learnt_uploads_and_an_old_one_turns_the_rule_off(tmp_path: Path) -> None:
    detector = _detector()
    path = tmp_path / "detector.npz"
    path.write_bytes(detector_bytes(detector))
    loaded, _ = load_detector(path)
    assert loaded.uploads is not None and detector.uploads is not None
    assert loaded.uploads.largest.tolist() == detector.uploads.largest.tolist()
    assert loaded.score([APP], ["52.217.40.7"], None, np.array([2000 * MB]))["large_upload"].tolist() == [True]
    old = Detector(detector.memory, detector.novelty_table, None, frozenset(), detector.settings)
    path.write_bytes(detector_bytes(old))
    reloaded, _ = load_detector(path)
    assert reloaded.uploads is None
    assert not reloaded.score([APP], ["52.217.40.7"], None, np.array([2000 * MB]))["large_upload"].any()


def _object_findings(detector: Detector, book: FindingLedger, source: str, sent: int) -> list[Finding]:
    def make(entity: str, ip: str, value: float) -> Any:
        return Finding(entity, ip, value, 0.0, "v1", source, START_MS + 7 * DAY_MS, ACCOUNT, "us-east-1")

    pairs = [(APP, "52.217.40.7"), (APP, "52.216.0.3")]
    fleet = FleetContext(DAY, ACCOUNT, book)
    return findings_of(pairs, [0.0, 0.0], make, Knowledge(detector.memory, detector), 0.0, fleet, [sent, sent])


@pytest.mark.parametrize("kind", ["sqlite", "dynamodb"])
def test_an_upload_spread_over_the_days_objects_is_added_up_once_per_object(kind: str, tmp_path: Path) -> None:
    """30 MB in one object is under the 50 MB floor; the next object's 30 MB brings the day to 60 MB: a High
    finding naming the bytes and the workload's largest first upload. The first object redelivered replaces its own
    figure, never adds it twice. The known address's 30 MB is never recorded."""
    with mock_aws():
        detector = _detector()
        book = _ledger(kind, tmp_path)
        assert _object_findings(detector, book, "s3://lake/a", 30 * MB) == []
        [finding] = _object_findings(detector, book, "s3://lake/b", 30 * MB)
        assert (finding.entity, finding.ip, finding.severity) == (APP, "52.217.40.7", "High")
        assert finding.evidence["large_upload"] == "true"
        assert finding.evidence["bytes_out_day"] == str(60 * MB)
        assert finding.evidence["largest_first_upload_bytes"] == str(3 * MB)
        assert finding.why.startswith("i-app sent 60.0 MB to 52.217.40.7 today, an address it and its peers never met")
        assert "3.0 MB" in finding.why
        assert book.upload(DAY, "s3://lake/a", {f"{APP}|52.217.40.7": 30 * MB}) == {f"{APP}|52.217.40.7": 60 * MB}
        assert book.upload(DAY, "s3://lake/c", {f"{APP}|52.216.0.3": 0}) == {f"{APP}|52.216.0.3": 0}
        assert book.upload("20220412", "s3://lake/a", {f"{APP}|52.217.40.7": 5}) == {f"{APP}|52.217.40.7": 5}


def test_small_first_connections_cost_no_state_table_call(tmp_path: Path) -> None:
    """Under upload_tracked_bytes (1 MB) in the object, nothing is recorded: the day's sum stays empty."""
    detector = _detector()
    book = SqliteLedger(tmp_path / "state.sqlite")
    assert _object_findings(detector, book, "s3://lake/a", 900_000) == []
    assert book.upload(DAY, "s3://lake/z", {f"{APP}|52.217.40.7": 0}) == {f"{APP}|52.217.40.7": 0}


def test_large_uploads_from_several_workloads_to_one_new_address_are_each_a_finding_not_a_fleet_change(
    tmp_path: Path,
) -> None:
    """Three workloads of the account send 5 GB each to one Amazon address none of them met: an owner they know, so
    three would make a Low fleet change; data leaving in volume is each workload's High finding instead."""
    detector = _detector()
    new = f"{ACCOUNT}/i-new#client:web"
    pairs = [(APP, "52.217.40.7"), (BACKUP, "52.217.40.7"), (new, "52.217.40.7")]

    def make(entity: str, ip: str, value: float) -> Any:
        return Finding(entity, ip, value, 0.0, "v1", "s3://lake/a", START_MS + 7 * DAY_MS, ACCOUNT, "us-east-1")

    fleet = FleetContext(DAY, ACCOUNT, SqliteLedger(tmp_path / "state.sqlite"))
    known = Knowledge(detector.memory, detector)
    found = findings_of(pairs, [0.0] * 3, make, known, 0.0, fleet, [5000 * MB] * 3)
    assert sorted((f.entity, f.severity) for f in found) == sorted((e, "High") for e, _ in pairs)
    small = findings_of(pairs, [0.0] * 3, make, known, 0.0, fleet, [0] * 3)
    assert [(f.entity, f.severity) for f in small] == [(f"{ACCOUNT}/*", "Low")]


def test_a_detector_fitted_by_a_newer_release_loads_without_the_settings_this_code_lacks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A pipeline upgraded before the monitor: its detector's settings name a rule this monitor does not have. The
    monitor keeps working with the rules it has and says which settings it ignored, instead of failing every
    message until it is redeployed."""
    import io
    import json

    detector = _detector()
    with np.load(io.BytesIO(detector_bytes(detector)), allow_pickle=False) as saved:
        arrays = {name: saved[name] for name in saved.files}
    header = json.loads(str(arrays["header"]))
    header["settings"]["a_rule_from_the_future"] = 3
    arrays["header"] = np.asarray(json.dumps(header, sort_keys=True))
    path = tmp_path / "detector.npz"
    with path.open("wb") as handle:
        np.savez_compressed(handle, **arrays)
    with caplog.at_level("WARNING", logger="seclake.detector"):
        loaded, _ = load_detector(path)
    assert loaded.settings == detector.settings
    assert "a_rule_from_the_future" in caplog.text
