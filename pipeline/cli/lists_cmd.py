"""`seclake lists put trusted|threat NAME FILE`: an analyst list (GuardDuty's plain-text format) where the monitor
reads it, under the artifacts' lists/; `detection.trusted_lists` / `threat_lists` (the monitor's TRUSTED_LISTS /
THREAT_LISTS) name the ones it applies."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from pipeline.artifact_store import put_artifact
from pipeline.cli.context import config_of, console
from pipeline.errors import UserError
from scripts.handoff.artifacts import ArtifactLayout
from scripts.monitor.iplists import KINDS, IpList
from scripts.monitor.settings import LIST_NAME

app = typer.Typer(help="Trusted and threat lists the monitor applies.", no_args_is_help=True)


@app.command("put")
def put(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help="trusted or threat")],
    name: Annotated[str, typer.Argument(help="The list's name (letters, digits, _ . -)")],
    file: Annotated[Path, typer.Argument(help="One IP address or CIDR a line; # starts a comment")],
    aws: Annotated[bool, typer.Option(help="Upload to the artifact bucket in AWS instead of the local store.")] = False,
) -> None:
    """Check the list and upload it; the monitor reads it again within five minutes."""
    config = config_of(ctx)
    listed = _checked(kind, name, file)
    uri = ArtifactLayout(config.aws.artifact_uri).analyst_list(kind, name)
    put_artifact(config, uri, file.read_bytes(), aws)
    skipped = ""
    if listed.skipped:
        skipped = f"; {len(listed.skipped)} lines skipped (not an address nor a CIDR: {listed.skipped[0]!r}...)"
    console.print(f"{kind} list {name}: {len(listed)} ranges to {uri}{skipped}")
    field = f"detection.{kind}_lists"
    if name not in getattr(config.detection, f"{kind}_lists"):
        console.print(f"add {name} to {field} (the monitor's {kind.upper()}_LISTS) for the monitor to apply it")


def _checked(kind: str, name: str, file: Path) -> IpList:
    if kind not in KINDS:
        message = f"list kind {kind!r}: give one of {', '.join(KINDS)}"
        raise UserError(message)
    if not LIST_NAME.fullmatch(name):
        message = f"list name {name!r}: use letters, digits, '_', '.', '-' (at most 64)"
        raise UserError(message)
    if not file.is_file():
        message = f"{file} is not a file: give a text file with one IP address or CIDR a line"
        raise UserError(message)
    try:
        listed = IpList.parse(name, file.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as error:
        message = f"{file} is not UTF-8 ({error}): save it as UTF-8, one IP address or CIDR a line"
        raise UserError(message) from None
    if len(listed) == 0:
        message = f"{file} holds no IP address nor CIDR ({len(listed.skipped)} lines skipped): nothing to upload"
        raise UserError(message)
    return listed
