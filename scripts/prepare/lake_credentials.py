"""The lake read as a Security Lake subscriber: the driver assumes the subscriber role (external id) and hands each
lake bucket's credentials to S3A per bucket, assuming it again before a scan once the session nears its end."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scripts.assumed_role import RoleSession, SessionCredentials
from scripts.ocsf.layout import bucket_region
from scripts.prepare.request_log import REQUESTS

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

SESSION_NAME = "seclake-ipinsights-prepare"
TEMPORARY_CREDENTIALS = "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider"
# Hadoop caches one filesystem per scheme and bucket, created with the credentials of its time; without the cache,
# every scan's tasks open theirs with the credentials set before the scan (the executors receive the job's
# configuration with each scan). The SageMaker Spark container reads s3:// through S3A as well.
UNCACHED_SCHEMES = ("s3", "s3a")


def through_s3a(roots: list[str]) -> list[str]:
    """The roots as s3a:// URIs: the per-bucket credentials are S3A's, and the Spark 3.5 image (EMR's Hadoop) may
    read s3:// through EMRFS, which ignores them. A local folder stays as it is."""
    return [f"s3a://{root.removeprefix('s3://')}" if root.startswith("s3://") else root for root in roots]


def s3_buckets(roots: list[str]) -> list[str]:
    """The buckets of the s3:// (or s3a://) roots, once each; a local folder has none."""
    buckets = []
    for root in roots:
        scheme, _, rest = root.partition("://")
        if scheme in UNCACHED_SCHEMES and rest:
            buckets.append(rest.split("/")[0])
    return list(dict.fromkeys(buckets))


def sts_region(roots: list[str]) -> str | None:
    """The lake's region, from its first bucket's name, for STS's regional endpoint (a subscriber sees one region;
    the job need not rely on the container's AWS_REGION). None: no Security Lake bucket among the roots."""
    return next((region for region in map(bucket_region, s3_buckets(roots)) if region is not None), None)


def s3a_settings(buckets: list[str], credentials: SessionCredentials) -> dict[str, str]:
    """Hadoop settings that make S3A read these buckets, and only these, with the session's credentials."""
    settings = {f"fs.{scheme}.impl.disable.cache": "true" for scheme in UNCACHED_SCHEMES}
    for bucket in buckets:
        prefix = f"fs.s3a.bucket.{bucket}"
        settings |= {
            f"{prefix}.aws.credentials.provider": TEMPORARY_CREDENTIALS,
            f"{prefix}.access.key": credentials.access_key_id,
            f"{prefix}.secret.key": credentials.secret_access_key,
            f"{prefix}.session.token": credentials.session_token,
        }
    return settings


class LakeCredentials:
    """The subscriber role's session for the lake's buckets; `refresh` before each scan of the lake."""

    def __init__(self, session: RoleSession, roots: list[str]) -> None:
        self.session = session
        self.buckets = s3_buckets(roots)
        self.applied: SessionCredentials | None = None

    def refresh(self, spark: SparkSession) -> None:
        """Assume the role again when the session nears its end, and hand the current one to S3A."""
        credentials = self.session.credentials()
        if credentials is self.applied:
            return
        configuration: Any = spark.sparkContext._jsc.hadoopConfiguration()
        for key, value in s3a_settings(self.buckets, credentials).items():
            configuration.set(key, value)
        self.applied = credentials
        REQUESTS.signed_by(credentials.access_key_id)
