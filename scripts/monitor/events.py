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
    """One SQS record: its id and objects; or why it could not be read (a failure, retried then dead-lettered); or
    why it holds nothing to score though it is well formed (acknowledged: an S3 test event, an empty Records list)."""

    message_id: str
    objects: list[ObjectRef] = field(default_factory=list)
    error: str | None = None
    ignored: str | None = None


class NotANotificationError(ValueError):
    """A body that parses but is neither an S3 notification nor an EventBridge event; the message says what it is."""


def _body(record: dict[str, Any]) -> Any:
    body = record.get("body")
    if isinstance(body, str):  # real SQS bodies are JSON strings
        return json.loads(body)
    return body  # test fixtures (and some tools) put the object itself


def _shape(document: Any) -> str:
    if isinstance(document, dict):
        return f"an object with keys {sorted(document)[:8]}"
    return f"a JSON {type(document).__name__}"


def _objects(document: Any, depth: int = 0) -> list[ObjectRef]:
    if depth > 2:
        message = "notifications nested more than twice (SNS in SNS in SNS?)"
        raise NotANotificationError(message)
    if isinstance(document, dict) and isinstance(document.get("Message"), str):  # SNS-wrapped notifications
        return _objects(json.loads(document["Message"]), depth + 1)
    if isinstance(document, dict) and isinstance(document.get("Records"), list):  # S3 event notification
        found = []
        for entry in document["Records"]:
            s3 = entry.get("s3") if isinstance(entry, dict) else None
            bucket = s3.get("bucket") if isinstance(s3, dict) else None
            obj = s3.get("object") if isinstance(s3, dict) else None
            name = bucket.get("name") if isinstance(bucket, dict) else None
            key = obj.get("key") if isinstance(obj, dict) else None
            if isinstance(name, str) and isinstance(key, str) and name and key:
                found.append(ObjectRef(name, urllib.parse.unquote_plus(key)))
        return found
    if isinstance(document, dict) and isinstance(document.get("detail"), dict):  # EventBridge "Object Created"
        detail = document["detail"]
        bucket, obj = detail.get("bucket"), detail.get("object")
        name = bucket.get("name") if isinstance(bucket, dict) else None
        key = obj.get("key") if isinstance(obj, dict) else None
        return [ObjectRef(name, key)] if isinstance(name, str) and isinstance(key, str) and name and key else []
    message = f"body is JSON but {_shape(document)}, not an S3 notification or an EventBridge event"
    raise NotANotificationError(message)


def _ignorable(document: Any) -> str | None:
    """Why a well-formed body holds nothing to score, or None."""
    if isinstance(document, dict) and isinstance(document.get("Message"), str):
        try:
            return _ignorable(json.loads(document["Message"]))
        except (json.JSONDecodeError, RecursionError):
            return None
    if isinstance(document, dict) and document.get("Event") == "s3:TestEvent":
        return "S3 test event (sent when a notification is configured)"
    if isinstance(document, dict) and document.get("Records") == []:
        return "notification with no records"
    return None


def _message(record: Any, position: int) -> Message:
    if not isinstance(record, dict):
        return Message(f"record-{position}", error=f"record is {_shape(record)}, not an SQS record")
    message_id = str(record.get("messageId") or f"record-{position}")
    try:
        document = _body(record)
    except (json.JSONDecodeError, TypeError) as error:
        return Message(message_id, error=f"body is not JSON: {error}")
    except RecursionError:
        return Message(message_id, error="body is JSON nested too deeply to be a notification")
    ignored = _ignorable(document)
    if ignored:
        return Message(message_id, ignored=ignored)
    try:
        objects = _objects(document)
    except NotANotificationError as error:
        return Message(message_id, error=str(error))
    except (json.JSONDecodeError, RecursionError) as error:
        return Message(message_id, error=f"SNS-wrapped Message is not readable JSON: {type(error).__name__}")
    if not objects:
        return Message(
            message_id,
            error="body names no S3 object (expected an S3 object-created notification or an EventBridge Object "
            "Created event with bucket.name and object.key)",
        )
    return Message(message_id, objects)


def parse_batch(event: Any) -> list[Message]:
    """Every record of an SQS batch; a record that names no object is kept with its error, never raised."""
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        return []  # not an SQS batch: there is no message to acknowledge or to fail
    return [_message(record, position) for position, record in enumerate(records)]
