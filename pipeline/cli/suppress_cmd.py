"""`seclake suppress add|list|remove|apply`: suppression rules, GuardDuty's model (scripts/monitor/suppression.py).
Locally in SECLAKE_HOME/suppressions.sqlite, which the local monitor reads; with --aws in detection.suppression_table,
which the function reads (within a minute)."""

from __future__ import annotations

import datetime as dt
import getpass
import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.table import Table

from pipeline import aws_ops
from pipeline.cli.context import config_of, console
from pipeline.cli.monitor_cmd import SUPPRESSIONS_FILE
from pipeline.config import Config
from pipeline.errors import UserError
from scripts.monitor.rule_store import DynamoRules, RuleStore, SqliteRules
from scripts.monitor.suppression import CRITERIA, RuleError, SuppressionRule

app = typer.Typer(help="Suppression rules: findings they match are written Suppressed, never notified.")
DURATION = re.compile(r"^(\d+)([dhm])$")
UNITS = {"d": "days", "h": "hours", "m": "minutes"}

Criterion = Annotated[str | None, typer.Option(help="Glob (* ?), except ip: an address or CIDR")]


def _store(config: Config, aws: bool) -> RuleStore:
    if not aws:
        return SqliteRules(config.home / SUPPRESSIONS_FILE)
    if not config.detection.suppression_table:
        message = (
            "set detection.suppression_table to the monitor stack's SuppressionRulesTableName output "
            "(SECLAKE_DETECTION__SUPPRESSION_TABLE=...) to manage the rules in AWS"
        )
        raise UserError(message)
    client = aws_ops.aws_session(config).client("dynamodb", region_name=config.aws.region)
    return DynamoRules(config.detection.suppression_table, client)


def expiry_ms(text: str | None, now: dt.datetime) -> int | None:
    """`7d`, `12h`, `30m` from now, or an ISO date or date-time (UTC when it names no zone); None: never."""
    if not text:
        return None
    duration = DURATION.match(text.strip())
    if duration:
        moment = now + dt.timedelta(**{UNITS[duration.group(2)]: int(duration.group(1))})
    else:
        try:
            moment = dt.datetime.fromisoformat(text.strip())
        except ValueError:
            message = f"expiry {text!r}: give a duration (7d, 12h, 30m) or an ISO date-time (2026-12-31T00:00:00Z)"
            raise UserError(message) from None
        moment = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


def _rule(entry: dict[str, Any], now: dt.datetime) -> SuppressionRule:
    criteria = {name: str(entry[name]) for name in CRITERIA if entry.get(name) not in (None, "")}
    rule_id = str(
        entry.get("id") or "r-" + hashlib.sha256(json.dumps(criteria, sort_keys=True).encode()).hexdigest()[:12]
    )
    try:
        return SuppressionRule(
            rule_id,
            criteria,
            str(entry.get("reason") or ""),
            str(entry.get("author") or getpass.getuser()),
            int(now.timestamp() * 1000),
            expiry_ms(str(entry["expires"]) if entry.get("expires") else None, now),
        )
    except RuleError as error:
        raise UserError(str(error)) from None


@app.command("add")
def add(
    ctx: typer.Context,
    reason: Annotated[str, typer.Option(help="Why these findings are expected (shown on each)")],
    account: Criterion = None,
    workload: Criterion = None,
    role: Criterion = None,
    ip: Criterion = None,
    owner: Criterion = None,
    severity: Criterion = None,
    kind: Criterion = None,
    expires: Annotated[str | None, typer.Option(help="7d, 12h, 30m, or an ISO date-time; default: never")] = None,
    author: Annotated[str | None, typer.Option(help="Default: your login name")] = None,
    rule_id: Annotated[str | None, typer.Option("--id", help="Default: derived from the criteria")] = None,
    aws: Annotated[bool, typer.Option(help="Write to detection.suppression_table in AWS.")] = False,
) -> None:
    """Add (or replace, by id) a rule; every criterion given must match for a finding to be suppressed."""
    config = config_of(ctx)
    given = {"account": account, "workload": workload, "role": role, "ip": ip, "owner": owner}
    entry = {**given, "severity": severity, "kind": kind, "reason": reason, "author": author, "id": rule_id}
    rule = _rule({**entry, "expires": expires}, dt.datetime.now(dt.UTC))
    _store(config, aws).put(rule)
    until = _day(rule.expires_ms) if rule.expires_ms else "until removed"
    console.print(f"rule {rule.rule_id}: {json.dumps(rule.criteria, sort_keys=True)} ({until})", highlight=False)


@app.command("apply")
def apply(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="YAML: a list of rules (id, criteria fields, reason, author, expires)")],
    aws: Annotated[bool, typer.Option(help="Write to detection.suppression_table in AWS.")] = False,
) -> None:
    """Put every rule of a YAML file (a rule with the same id is replaced): the form CI applies."""
    config = config_of(ctx)
    try:
        entries = yaml.load(file.read_text(), Loader=yaml.BaseLoader)  # every value a string: 012345670123 stays so
    except (OSError, yaml.YAMLError) as error:
        message = f"{file}: {error}"
        raise UserError(message) from None
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        message = f"{file}: give a YAML list of rules, each a mapping (id, reason, and criteria such as ip: 10.0.0.0/8)"
        raise UserError(message)
    now = dt.datetime.now(dt.UTC)
    rules = [_rule(entry, now) for entry in entries]
    store = _store(config, aws)
    for rule in rules:
        store.put(rule)
    console.print(f"{len(rules)} rules applied from {file}")


@app.command("list")
def list_rules(
    ctx: typer.Context,
    aws: Annotated[bool, typer.Option(help="Read detection.suppression_table in AWS.")] = False,
) -> None:
    """Every rule, with whether it is still live."""
    config = config_of(ctx)
    rules = _store(config, aws).rules()
    if not rules:
        console.print("no suppression rules")
        return
    now_ms = int(dt.datetime.now(dt.UTC).timestamp() * 1000)
    grid = Table(title="Suppression rules")
    for column in ("id", "criteria", "reason", "author", "expires", "live"):
        grid.add_column(column)
    for rule in rules:
        expires = _day(rule.expires_ms) if rule.expires_ms else "never"
        criteria = json.dumps(rule.criteria, sort_keys=True)
        grid.add_row(rule.rule_id, criteria, rule.reason, rule.author, expires, str(rule.live(now_ms)).lower())
    console.print(grid)


@app.command("remove")
def remove(
    ctx: typer.Context,
    rule_id: Annotated[str, typer.Argument(help="The rule's id (seclake suppress list)")],
    aws: Annotated[bool, typer.Option(help="Remove from detection.suppression_table in AWS.")] = False,
) -> None:
    """Remove a rule; the findings it suppressed stay as they were written."""
    config = config_of(ctx)
    if not _store(config, aws).remove(rule_id):
        message = f"no suppression rule {rule_id!r}: `seclake suppress list` shows them"
        raise UserError(message)
    console.print(f"rule {rule_id} removed")


def _day(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
