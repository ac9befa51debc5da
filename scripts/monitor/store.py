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


class ObjectKeyError(ValueError):
    """A bucket or key that cannot name an object in the folder (it would resolve outside it); the message names it."""


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
        source = self._path(bucket, key) if self.root is not None else None
        handle, name = tempfile.mkstemp(suffix=".parquet")
        os.close(handle)
        target = Path(name)
        try:
            if source is not None:
                shutil.copyfile(source, target)
            else:
                self.client.download_file(bucket, key, str(target))
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return target

    def put(self, bucket: str, key: str, body: bytes) -> None:
        if self.root is not None:
            path = self._path(bucket, key)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
        else:
            self.client.put_object(Bucket=bucket, Key=key, Body=body)

    def get_text(self, uri: str) -> str:
        """The object's text (UTF-8); ObjectMissingError when there is no such object."""
        return self.get_bytes(uri).decode()

    def get_bytes(self, uri: str) -> bytes:
        """The object's bytes; ObjectMissingError when there is no such object."""
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        if self.root is not None:
            path = self._path(bucket, key)
            if not path.is_file():
                message = f"{uri} does not exist"
                raise ObjectMissingError(message)
            return path.read_bytes()
        try:
            return bytes(self.client.get_object(Bucket=bucket, Key=key)["Body"].read())
        except Exception as error:  # botocore's ClientError: only a missing key becomes ObjectMissingError
            code = str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))
            if code in MISSING_CODES:
                message = f"{uri} does not exist"
                raise ObjectMissingError(message) from error
            raise

    def _path(self, bucket: str, key: str) -> Path:
        """<root>/<bucket>/<key>, refused when a `..`, an absolute part or a link would take it outside the root."""
        assert self.root is not None
        root = self.root.resolve()
        path = (root / bucket / key).resolve()
        if not bucket or bucket in {".", ".."} or "/" in bucket or not path.is_relative_to(root / bucket):
            message = f"s3://{bucket}/{key} resolves outside the local store {root}: not an object name S3 could hold"
            raise ObjectKeyError(message)
        return path
