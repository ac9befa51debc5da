"""Build the monitor Lambda's deployment zip: the handler and the job code it imports; boto3 and pyarrow come from
the Lambda runtime and the AWS SDK for pandas layer (no torch, no Spark)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

from pipeline.code_bundle import PROJECT_ROOT

PACKAGES = ("scripts/monitor", "scripts/deploy", "scripts/pairs", "scripts/ocsf", "scripts/detect", "scripts/handoff")
MODULES = ("scripts/__init__.py", "scripts/addresses.py", "scripts/assumed_role.py", "scripts/entity.py")
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def monitor_zip(root: Path = PROJECT_ROOT) -> bytes:
    buffer = io.BytesIO()
    files = [root / module for module in MODULES] + [
        p for package in PACKAGES for p in sorted((root / package).rglob("*.py"))
    ]
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(root).as_posix(), date_time=_FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return buffer.getvalue()
