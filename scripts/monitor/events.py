"""Parse SQS batches from a Security Lake subscriber queue into the objects to score."""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ObjectRef:
    """An S3 object named by a notification."""

    bucket: str
    key: str


@dataclass
class Message:
    """One SQS record: its id and objects, or why it could not be read."""

    message_id: str
    objects: list[ObjectRef] = field(default_factory=list)
    error: str | None = None


def _body(record: dict[str, Any]) -> Any:
    body = record.get("body")
    if isinstance(body, str):  # real SQS bodies are JSON strings
        return json.loads(body)
    return body  # test fixtures (and some tools) put the object itself


def _objects(document: Any) -> list[ObjectRef]:
    if isinstance(document, dict) and isinstance(document.get("Message"), str):  # SNS-wrapped notifications
        return _objects(json.loads(document["Message"]))
    if isinstance(document, dict) and isinstance(document.get("Records"), list):  # S3 event notification
        found = []
        for entry in document["Records"]:
            s3 = entry.get("s3", {}) if isinstance(entry, dict) else {}
            bucket, key = s3.get("bucket", {}).get("name"), s3.get("object", {}).get("key")
            if bucket and key:
                found.append(ObjectRef(bucket, urllib.parse.unquote_plus(key)))
        return found
    if isinstance(document, dict) and isinstance(document.get("detail"), dict):  # EventBridge "Object Created"
        detail = document["detail"]
        bucket, key = detail.get("bucket", {}).get("name"), detail.get("object", {}).get("key")
        return [ObjectRef(bucket, key)] if bucket and key else []
    return []


def parse_batch(event: dict[str, Any]) -> list[Message]:
    """Every record of an SQS batch; a record that names no object is kept with its error, never raised."""
    messages = []
    for position, record in enumerate(event.get("Records", [])):
        message_id = str(record.get("messageId") or f"record-{position}")
        try:
            objects = _objects(_body(record))
        except (json.JSONDecodeError, TypeError, AttributeError) as error:
            messages.append(Message(message_id, error=f"body is not JSON: {error}"))
            continue
        if not objects:
            messages.append(
                Message(
                    message_id,
                    error="body names no S3 object (expected an S3 object-created "
                    "notification or an EventBridge Object Created event)",
                )
            )
        else:
            messages.append(Message(message_id, objects))
    return messages
