"""Read and write S3 objects; SECLAKE_OBJECT_STORE_ROOT points the same calls at a local folder laid out as S3."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

ROOT_VARIABLE = "SECLAKE_OBJECT_STORE_ROOT"


class ObjectStore:
    """S3 through boto3, or a folder (<root>/<bucket>/<key>) when the environment says so."""

    def __init__(self, client: Any = None, root: str | None = None) -> None:
        self.root = Path(root) if root else (Path(os.environ[ROOT_VARIABLE]) if os.environ.get(ROOT_VARIABLE) else None)
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
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        if self.root is not None:
            return (self.root / bucket / key).read_text()
        return str(self.client.get_object(Bucket=bucket, Key=key)["Body"].read().decode())
