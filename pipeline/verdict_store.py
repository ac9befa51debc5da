"""The latest analyst verdict on each of some findings: from the local store, or from the artifact bucket in AWS."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pipeline.config import Config
from pipeline.local.s3map import S3Map
from scripts.handoff.artifacts import ArtifactLayout
from scripts.handoff.records import HandoffError
from scripts.handoff.verdicts import VERDICT_SUFFIX, Verdict, read_verdicts


def local_verdicts(config: Config, uids: Iterable[str]) -> dict[str, Verdict]:
    """The latest verdict of each finding in `uids` under $SECLAKE_HOME/s3 (an unreadable file is passed over)."""
    wanted = set(uids)
    folder = S3Map(config.home / "s3").to_local(ArtifactLayout(config.aws.artifact_uri).verdicts)
    return {v.finding_uid: v for v in read_verdicts(folder).verdicts if v.finding_uid in wanted}


def bucket_verdicts(config: Config, s3: Any, uids: Iterable[str]) -> dict[str, Verdict]:
    """The latest verdict of each finding in `uids` in the artifact bucket: one ListObjectsV2 per finding, then the
    newest object's body (names sort by the decision's time)."""
    bucket, _, prefix = ArtifactLayout(config.aws.artifact_uri).verdicts.removeprefix("s3://").partition("/")
    found = {}
    for uid in sorted(set(uids)):
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/{uid}/").get("Contents", [])
        keys = sorted(item["Key"] for item in listed if item["Key"].endswith(VERDICT_SUFFIX))
        if not keys:
            continue
        body = s3.get_object(Bucket=bucket, Key=keys[-1])["Body"].read()
        try:
            found[uid] = Verdict.parse(body.decode("utf-8", errors="replace"), f"s3://{bucket}/{keys[-1]}")
        except HandoffError:
            continue
    return found
