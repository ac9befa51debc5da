"""A service deployed today (issue 27, benign changes): new instances in a known subnet, called by their account's
web servers on a port they never used. The callers' new role is one grouped change; the new instances answering
their own account are ordinary; what they answer from elsewhere is not."""

from __future__ import annotations

import numpy as np

from scripts.detect.addressbook import AddressBook
from scripts.detect.detector import Detector
from scripts.detect.memory import Pairs
from scripts.detect.settings import DAY_MS, DetectorSettings

ACCOUNT, OTHER = "111111111111", "222222222222"
WEBS = [f"10.1.1.{n}" for n in (11, 12, 13)]
APPS = [f"10.1.2.{n}" for n in (21, 22)]
NEW = "10.1.2.50"  # launched today in the apps' subnet
DAYS = 7


def _book() -> AddressBook:
    ips = [*WEBS, *APPS, "10.9.0.5"]
    subnets = ["s-web"] * 3 + ["s-app"] * 2 + ["s-other"]
    accounts = [ACCOUNT] * 5 + [OTHER]
    columns = {
        "account": accounts,
        "region": ["us-east-1"] * 6,
        "vpc": ["vpc-a"] * 5 + ["vpc-b"],
        "subnet": subnets,
        "workload": ["i-w1", "i-w2", "i-w3", "i-a1", "i-a2", "i-x"],
    }
    fields: dict[str, list[str | None]] = {name: list[str | None](values) for name, values in columns.items()}
    return AddressBook.of_rows(ips, [1] * 6, fields)


def _detector() -> Detector:
    """A week of the web servers calling the app servers on 8443 (client:web / server:web), and the app servers
    reaching S3."""
    rows = []
    for day in range(DAYS):
        at = day * DAY_MS
        for w, web in enumerate(WEBS):
            for a, app in enumerate(APPS):
                rows.append((f"{ACCOUNT}/i-w{w + 1}#client:web", app, at + w))
                rows.append((f"{ACCOUNT}/i-a{a + 1}#server:web", web, at + a))
        for a in range(len(APPS)):
            rows += [(f"{ACCOUNT}/i-a{a + 1}#client:web", f"52.216.{day}.{k}", at + k) for k in range(20)]
    pairs = Pairs.of([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])
    settings = DetectorSettings(use_model=False)
    return Detector.fit(pairs, None, (DAYS - 1) * DAY_MS, settings, None, _book())


def test_a_new_service_called_by_the_web_fleet_is_a_grouped_change_and_its_instances_answer_ordinarily() -> None:
    detector = _detector()
    callers = [f"{ACCOUNT}/i-w{w + 1}#client:other" for w in range(3)]
    served = [f"{ACCOUNT}/i-new#server:other"] * 3
    entities = [*callers, *served, f"{ACCOUNT}/i-new#server:admin", f"{ACCOUNT}/i-new#server:other"]
    ips = [NEW] * 3 + WEBS + ["185.220.101.7", "10.9.0.5"]
    scored = detector.score(entities, ips, None)
    assert scored["network_owner"][:3].tolist() == [scored["network_owner"][3]] * 3  # the account, by its subnet
    assert scored["new_role"][:3].all() and scored["fleet_change"][:3].all()  # one grouped change, the fleet's
    assert not scored["flagged"][:6].any()
    assert scored["novelty"][3:6].tolist() == [detector.settings.served_owner_novelty] * 3
    # the new instance answering the internet, or another account's workload, is as novel as before
    assert scored["novelty"][6] == scored["novelty"][7] == 1.0
    alone = detector.score(callers[:2], [NEW] * 2, None)
    assert alone["flagged"].all() and not alone["fleet_change"].any()  # two callers: no fleet, each its new role
    np.testing.assert_array_equal(alone["new_role"], [True, True])


def test_three_workloads_in_a_new_role_towards_an_established_host_of_their_account_are_not_a_deployment() -> None:
    """Lateral movement from three compromised web servers to an app server they never reached on SSH: the app
    server is an established host of the book, so each pair keeps its new role's alert; no Low grouped change."""
    detector = _detector()
    movers = [f"{ACCOUNT}/i-w{w + 1}#client:admin" for w in range(3)]
    scored = detector.score(movers, [APPS[0]] * 3, None)
    assert scored["new_role"].all() and not scored["owner_known"].any()
    assert scored["flagged"].all() and not scored["fleet_change"].any()
