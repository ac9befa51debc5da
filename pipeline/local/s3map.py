"""Local "S3": s3://bucket/key <-> $SECLAKE_HOME/s3/bucket/key, both ways."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from scripts.ocsf.layout import bucket_region


def hadoop_uri(path: Path) -> str:
    """file:///... as Hadoop reads it: the path as is (Path.as_uri() would percent-encode the '=' of partitions)."""
    return "file://" + path.resolve().as_posix()


class S3MapError(ValueError):
    """A URI is not s3://bucket/key, or names nothing in the local store."""


@dataclass(frozen=True)
class S3Map:
    """Maps s3:// URIs into a folder laid out as <root>/<bucket>/<key>."""

    root: Path

    def to_local(self, uri: str) -> Path:
        if not uri.startswith("s3://") or len(uri) <= len("s3://"):
            message = f"{uri!r} is not an s3:// URI"
            raise S3MapError(message)
        bucket, _, key = uri[len("s3://") :].partition("/")
        return self.root / bucket / key

    def to_uri(self, path: Path) -> str:
        relative = path.resolve().relative_to(self.root.resolve())
        return "s3://" + relative.as_posix()

    def objects(self, uri: str) -> list[Path]:
        """Every file whose key starts with the URI's key (S3Prefix semantics), sorted."""
        local = self.to_local(uri)
        if local.is_file():
            return [local]
        prefix = local.name
        parent = local.parent
        if not parent.exists():
            return []
        found = []
        for candidate in sorted(parent.iterdir()):
            if candidate.name.startswith(prefix):
                found.extend(
                    [candidate] if candidate.is_file() else sorted(p for p in candidate.rglob("*") if p.is_file())
                )
        return found

    def download(self, uri: str, destination: Path) -> list[Path]:
        """Copy the objects under a URI into a folder, keeping their paths below the URI."""
        local = self.to_local(uri)
        objects = self.objects(uri)
        if not objects:
            message = f"nothing at {uri} (looked in {local}): an upstream step did not write it"
            raise S3MapError(message)
        destination.mkdir(parents=True, exist_ok=True)
        copied = []
        for source in objects:
            relative = source.relative_to(local) if source != local and local in source.parents else Path(source.name)
            target = destination / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
            copied.append(target)
        return copied

    def upload(self, source: Path, uri: str) -> None:
        """Copy a file or a folder's contents to a URI."""
        target = self.to_local(uri)
        if source.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)

    def put_bytes(self, uri: str, body: bytes) -> None:
        target = self.to_local(uri)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(body)


def local_lake_buckets(s3_root: Path) -> list[tuple[str, Path]]:
    """(region, folder) of each Security Lake bucket in the local S3 (never the artifacts' bucket)."""
    found = []
    for folder in sorted(s3_root.glob("*")) if s3_root.exists() else []:
        region = bucket_region(folder.name)
        if region is not None and folder.is_dir():
            found.append((region, folder))
    return found
