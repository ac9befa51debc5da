"""Objects an analyst's command puts under the artifact root: in the local store, or in the artifact bucket in AWS."""

from __future__ import annotations

from pipeline import aws_ops
from pipeline.config import Config
from scripts.monitor.store import ObjectStore


def put_artifact(config: Config, uri: str, body: bytes, aws: bool) -> None:
    """Write `body` at `uri` (s3://bucket/key): under $SECLAKE_HOME/s3, or with S3 PutObject when `aws`."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not aws:
        ObjectStore(root=config.home / "s3").put(bucket, key, body)
        return
    with aws_ops.readable_aws_errors(config):
        aws_ops.aws_session(config).client("s3", region_name=config.aws.region).put_object(
            Bucket=bucket, Key=key, Body=body
        )
