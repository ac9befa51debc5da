"""Where Security Lake keeps native-source objects: bucket names, object keys, and parsing keys back."""

from __future__ import annotations

import re
from dataclasses import dataclass

from scripts.ocsf.schemas import SOURCE_VERSIONS, Source

BUCKET_PREFIX = "aws-security-data-lake-"
BUCKET_SUFFIX_LENGTH = 30
_BUCKET_PATTERN = re.compile(r"^aws-security-data-lake-(?P<region>[a-z]{2}(?:-[a-z]+)+-\d)-(?P<suffix>[a-z0-9]{30})$")
_KEY_PATTERN = re.compile(
    r"(?:^|/)aws/(?P<source>[A-Z0-9_]+)/(?P<folder>\d\.\d)/region=(?P<region>[a-z0-9-]+)/"
    r"accountId=(?P<account>\d{12})/eventDay=(?P<day>\d{8})/(?P<name>[^/]+\.parquet)$"
)


@dataclass(frozen=True)
class ObjectLocation:
    """The parts of a native-source object key."""

    source: str
    version: int | None
    region: str
    account: str
    event_day: str
    name: str


def bucket_name(region: str, suffix: str) -> str:
    """The Security Lake bucket of a region: `aws-security-data-lake-<region>-<30 lowercase letters/digits>`."""
    name = f"{BUCKET_PREFIX}{region}-{suffix}"
    if not _BUCKET_PATTERN.match(name):
        message = (
            f"{name!r} is not a Security Lake bucket name: the suffix must be {BUCKET_SUFFIX_LENGTH} lowercase "
            f"letters or digits (got {len(suffix)} characters) and the region like 'us-east-1'"
        )
        raise ValueError(message)
    return name


def bucket_region(name: str) -> str | None:
    """The region of a Security Lake bucket name, or None when the name is not one."""
    match = _BUCKET_PATTERN.match(name)
    return match["region"] if match else None


def source_prefix(source: Source, version: int) -> str:
    """The key prefix of one native source and version, e.g. `aws/VPC_FLOW/2.0/`."""
    return f"aws/{source.value}/{SOURCE_VERSIONS[version].folder}/"


def object_key(source: Source, version: int, region: str, account: str, event_day: str, name: str) -> str:
    """The key of a native-source object, in the layout Security Lake writes."""
    if not re.fullmatch(r"\d{12}", account):
        message = f"account id {account!r} must be 12 digits (leading zeros kept, as AWS writes them)"
        raise ValueError(message)
    if not re.fullmatch(r"\d{8}", event_day):
        message = f"event day {event_day!r} must be YYYYMMDD"
        raise ValueError(message)
    return f"{source_prefix(source, version)}region={region}/accountId={account}/eventDay={event_day}/{name}"


def parse_object_key(key: str) -> ObjectLocation | None:
    """Split a native-source key into its parts; None when the key is not in that layout."""
    match = _KEY_PATTERN.search(key)
    if match is None:
        return None
    folder_to_version = {v.folder: n for n, v in SOURCE_VERSIONS.items()}
    return ObjectLocation(
        source=match["source"],
        version=folder_to_version.get(match["folder"]),
        region=match["region"],
        account=match["account"],
        event_day=match["day"],
        name=match["name"],
    )


# Query access: how Security Lake names its Glue database and tables (FACTS.md, "Storage"). A subscriber with query
# access reads them through resource links, which may be named otherwise: config can name each one.
CUSTOM_SOURCE_PREFIX = "ext"
# This product's findings as a custom source: its name unless config names another (Security Lake allows 20 characters)
FINDINGS_SOURCE_NAME = "seclake-ipinsights"


def _region_part(region: str) -> str:
    return region.replace("-", "_")


def glue_database(region: str) -> str:
    """`amazon_security_lake_glue_db_<region with underscores>`."""
    return f"amazon_security_lake_glue_db_{_region_part(region)}"


def glue_table(region: str, source: Source, version: int) -> str:
    """`amazon_security_lake_table_<region>_<source>_<1_0|2_0>` of a native source."""
    folder = SOURCE_VERSIONS[version].folder.replace(".", "_")
    return f"amazon_security_lake_table_{_region_part(region)}_{source.table_suffix}_{folder}"


def custom_source_table(region: str, source_name: str) -> str:
    """`amazon_security_lake_table_<region>_ext_<source name>`: the table Security Lake creates for a custom source
    (its crawler names it from the source; hyphens become underscores in Glue table names)."""
    return f"amazon_security_lake_table_{_region_part(region)}_{CUSTOM_SOURCE_PREFIX}_{source_name.replace('-', '_')}"
