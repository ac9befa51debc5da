"""Read and write objects: S3 through boto3, or a folder laid out as <root>/<bucket>/<key> (local replay)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

MISSING_CODES = {"NoSuchKey", "404", "NotFound"}


class ObjectMissingError(LookupError):
    """The object does not exist; the message names its URI."""


class ObjectStore:
    """S3 through a boto3 client (made on first use), or a folder when `root` is given: the caller chooses."""

    def __init__(self, client: Any = None, root: str | Path | None = None) -> None:
        self.root = Path(root) if root else None
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("s3")
        return self._client

    def download(self, bucket: str, key: str) -> Path:
        """A local copy of the object (streamed to a temporary file; the caller deletes it)."""
        handle, name = tempfile.mkstemp(suffix=".parquet")
        os.close(handle)
        target = Path(name)
        if self.root is not None:
            shutil.copyfile(self.root / bucket / key, target)
        else:
            self.client.download_file(bucket, key, str(target))
        return target

    def put(self, bucket: str, key: str, body: bytes) -> None:
        if self.root is not None:
            path = self.root / bucket / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
        else:
            self.client.put_object(Bucket=bucket, Key=key, Body=body)

    def get_text(self, uri: str) -> str:
        """The object's text; ObjectMissingError when there is no such object."""
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        if self.root is not None:
            path = self.root / bucket / key
            if not path.is_file():
                message = f"{uri} does not exist"
                raise ObjectMissingError(message)
            return path.read_text()
        try:
            return str(self.client.get_object(Bucket=bucket, Key=key)["Body"].read().decode())
        except Exception as error:  # botocore's ClientError: only a missing key becomes ObjectMissingError
            code = str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))
            if code in MISSING_CODES:
                message = f"{uri} does not exist"
                raise ObjectMissingError(message) from error
            raise
