"""Which sources a run reads: the configured ones the lake has. Route 53 resolver logging is optional in Security
Lake, so a lake without it runs on its flow logs and says what that costs; a source asked for by name is required."""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import UserError
from scripts.ocsf.schemas import Source

# What a run loses without each source, in the words a user reads before the run.
WITHOUT = {
    Source.ROUTE53: "no DNS-answer pairs (instance -> resolved address) and no queried names in findings",
    Source.VPC_FLOW: "no flow pairs: the model learns only which addresses instances resolve",
}


class MissingSourceError(UserError):
    """No configured source is in the lake, or one asked for by name is not."""


@dataclass(frozen=True)
class SourcePlan:
    used: list[Source]
    missing: list[Source]

    @property
    def parameter(self) -> str:
        """The pipeline's Sources parameter: `vpc_flow,route53`."""
        return ",".join(source.value.lower() for source in self.used)

    def line(self) -> str:
        """One line for the user: what is read and, for each missing source, what is lost."""
        read = ", ".join(source.value for source in self.used)
        lost = "; ".join(f"{source.value} is not in this lake: {WITHOUT[source]}" for source in self.missing)
        return f"sources: {read}" + (f" ({lost})" if lost else "")


def plan_sources(configured: list[Source], present: set[Source], explicit: bool) -> SourcePlan:
    """The configured sources the lake has. With `explicit` (the user named them) a missing one is an error;
    otherwise it is left out and named, and only a lake with none of them is an error."""
    used = [source for source in configured if source in present]
    missing = [source for source in configured if source not in present]
    found = ", ".join(sorted(source.value for source in present)) or "no native source"
    if missing and explicit:
        message = (
            f"--sources asked for {', '.join(s.value for s in missing)}, which this lake does not have (it has "
            f"{found}); leave it out of --sources, or turn the source on in Security Lake"
        )
        raise MissingSourceError(message)
    if not used:
        message = (
            f"the lake has none of the configured sources ({', '.join(s.value for s in configured)}); it has "
            f"{found}. Check lake.sources in config and the lake roots"
        )
        raise MissingSourceError(message)
    return SourcePlan(used, missing)
