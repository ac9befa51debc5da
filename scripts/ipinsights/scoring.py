"""Score (entity, ip) pairs and speak the built-in's inference formats: text/csv, application/json, jsonlines."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from scripts.ipinsights.features import AddressError, address_arrays, entity_buckets, prefix_features
from scripts.ipinsights.model import IPInsightsNetwork, load_model

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024  # SageMaker real-time endpoints accept at most 6 MB per request
csv.field_size_limit(MAX_PAYLOAD_BYTES)  # one long entity may fill a request; the default limit is 128 KiB
SUPPORTED_CONTENT_TYPES = ("text/csv", "application/json", "application/jsonlines")
SUPPORTED_ACCEPT = ("application/json", "application/jsonlines")
_ENTITY_CACHE_LIMIT = 1_000_000
_CSV_SPECIAL = ('"', "\r", "\0")  # what only the csv module reads right: quoted fields, CRLF, NUL


class RequestError(ValueError):
    """A request the endpoint refuses; `status` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _media_type(header: str | None) -> tuple[str, dict[str, str]]:
    if not header:
        return "", {}
    parts = [p.strip() for p in header.split(";")]
    parameters = {}
    for part in parts[1:]:
        if "=" in part:
            key, value = part.split("=", 1)
            parameters[key.strip().lower()] = value.strip()
    return parts[0].lower(), parameters


def parse_request(body: bytes, content_type: str | None) -> tuple[list[str], list[str]]:
    """Entities and IPs from a request body in one of the built-in's request formats."""
    if len(body) > MAX_PAYLOAD_BYTES:
        message = f"payload is {len(body):,} bytes; the limit is {MAX_PAYLOAD_BYTES:,} (6 MB): split the request"
        raise RequestError(413, message)
    media, _ = _media_type(content_type)
    if media not in SUPPORTED_CONTENT_TYPES:
        message = f"content type {content_type!r} is not supported; use one of: {', '.join(SUPPORTED_CONTENT_TYPES)}"
        raise RequestError(415, message)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        message = f"body is not UTF-8 ({error})"
        raise RequestError(400, message) from None
    if media == "text/csv":
        rows = _csv_rows(text)
    elif media == "application/json":
        try:
            document = json.loads(text)
        except json.JSONDecodeError as error:
            message = f"body is not JSON: {error}"
            raise RequestError(400, message) from None
        except RecursionError:
            raise RequestError(400, 'body is JSON nested too deeply; send {"instances": [...]}') from None
        if not isinstance(document, dict) or not isinstance(document.get("instances"), list):
            message = (
                'JSON body must be {"instances": [...]} with {"features": [entity, ip]} or '
                '{"data": {"features": {"values": [entity, ip]}}} per instance'
            )
            raise RequestError(400, message)
        rows = [_instance_values(instance, number) for number, instance in enumerate(document["instances"], 1)]
    else:
        rows = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                rows.append(_instance_values(json.loads(line), number))
            except json.JSONDecodeError as error:
                message = f"row {number}: not a JSON object ({error})"
                raise RequestError(400, message) from None
            except RecursionError:
                message = f"row {number}: JSON nested too deeply"
                raise RequestError(400, message) from None
    if not rows:
        raise RequestError(400, "the request has no rows; send `entity,ip` pairs")
    for number, row in enumerate(rows, 1):
        if len(row) != 2 or type(row[0]) is not str or type(row[1]) is not str:
            message = f"row {number}: expected 2 string fields entity,ip; found {row!r}"
            raise RequestError(400, message)
    return [row[0] for row in rows], [row[1] for row in rows]


def _csv_rows(text: str) -> list[list[str]]:
    """The non-empty CSV records of `text`. A body with no quote, carriage return or NUL (what the monitor and most
    clients send) is split directly, as the csv module would split it; any other goes through the csv module."""
    if not any(mark in text for mark in _CSV_SPECIAL):
        return [line.split(",") for line in text.split("\n") if line]
    try:
        return [row for row in csv.reader(io.StringIO(text)) if row]
    except csv.Error as error:
        message = f"body is not CSV: {error}"
        raise RequestError(400, message) from None


def _instance_values(instance: Any, number: int) -> list[Any]:
    if isinstance(instance, dict):
        if isinstance(instance.get("features"), list):
            return list(instance["features"])
        data = instance.get("data")
        if (
            isinstance(data, dict)
            and isinstance(data.get("features"), dict)
            and isinstance(data["features"].get("values"), list)
        ):
            return list(data["features"]["values"])
    message = (
        f'row {number}: expected {{"features": [entity, ip]}} or {{"data": {{"features": {{"values": '
        f"[entity, ip]}}}}}}, found {json.dumps(instance)[:200]}"
    )
    raise RequestError(400, message)


def response_format(accept: str | None) -> tuple[str, bool]:
    """(media type, verbose) for an Accept header, which may list several types (`application/json, */*`): the
    first supported one wins, `*/*` means JSON; when none is supported it is a 406 naming what is."""
    choices = [part.strip() for part in (accept or "").split(",") if part.strip()] or [""]
    for choice in choices:
        media, parameters = _media_type(choice)
        verbose = parameters.get("verbose", "").lower() in {"true", "1"}
        if media in ("", "*/*", "application/*"):
            return "application/json", verbose
        if media in SUPPORTED_ACCEPT:
            return media, verbose
    message = f"accept {accept!r} is not supported; use one of: {', '.join(SUPPORTED_ACCEPT)}"
    raise RequestError(406, message)


@dataclass
class Scores:
    """dot_product per pair, and the embeddings when asked for."""

    dot_product: np.ndarray
    entity_embedding: np.ndarray | None = None
    ip_embedding: np.ndarray | None = None


class Scorer:
    """A loaded model that scores batches of pairs, vectorised in numpy (the network's weights as arrays: no torch
    dispatch per request); entity hashes are cached."""

    def __init__(self, network: IPInsightsNetwork) -> None:
        self.network = network
        self.spec = network.spec
        self._entities: dict[str, int] = {}
        self._entity_table = network.entity.detach().numpy()
        self._prefix_table = network.prefix.detach().numpy()
        self._layers: list[tuple[np.ndarray, np.ndarray]] = [
            (layer.weight.detach().numpy().T.copy(), layer.bias.detach().numpy())
            for layer in network.layers
            if isinstance(layer, nn.Linear)
        ]

    @classmethod
    def from_model_dir(cls, model_dir: Path) -> Scorer:
        return cls(load_model(model_dir))

    def _buckets(self, entities: Sequence[str]) -> np.ndarray:
        missing = [e for e in set(entities) if e not in self._entities]
        if missing:
            if len(self._entities) + len(missing) > _ENTITY_CACHE_LIMIT:
                self._entities.clear()
            values = entity_buckets(missing, self.spec.hyperparameters.num_entity_vectors, self.spec.hash_seed)
            self._entities.update(zip(missing, values.tolist(), strict=True))
        return np.fromiter((self._entities[e] for e in entities), dtype=np.int64, count=len(entities))

    def score(self, entities: Sequence[str], ips: Sequence[str], verbose: bool = False) -> Scores:
        """Scores for row-aligned entities and IPs; a bad address is a RequestError naming its row."""
        try:
            families, high, low = address_arrays(ips)
        except AddressError as error:
            raise RequestError(400, str(error)) from None
        features = prefix_features(families, high, low, self.spec.prefix_buckets, self.spec.hash_seed)
        entity_vectors = self._entity_table[self._buckets(entities)]
        ip_vectors = self.ip_vectors(features)
        dot = np.einsum("ij,ij->i", entity_vectors, ip_vectors)
        if verbose:
            return Scores(dot, entity_vectors, ip_vectors)
        return Scores(dot)

    def ip_vectors(self, features: np.ndarray) -> np.ndarray:
        """The network's IPInsightsNetwork.ip_vectors in numpy: the mean of each address's prefix vectors through
        the FC layers, ReLU between them."""
        gathered = self._prefix_table[features.ravel()].reshape(len(features), features.shape[1], -1)
        hidden = gathered.mean(axis=1, dtype=np.float32)
        for position, (weight, bias) in enumerate(self._layers):
            hidden = hidden @ weight
            hidden += bias
            if position < len(self._layers) - 1:
                np.maximum(hidden, 0.0, out=hidden)
        return np.asarray(hidden, dtype=np.float32)


def render_response(scores: Scores, media: str) -> bytes:
    """The built-in's response body: {"predictions": [...]} for JSON, one object per line for JSON Lines."""
    values = scores.dot_product.tolist()
    if scores.entity_embedding is None and values:
        # the bytes json.dumps writes for the records, with the numbers written by its C encoder in one call (a
        # number's JSON never holds ", ")
        numbers = json.dumps(values)[1:-1].split(", ")
        if media == "application/jsonlines":
            return ('{"dot_product": ' + '}\n{"dot_product": '.join(numbers) + "}\n").encode()
        return ('{"predictions": [{"dot_product": ' + '}, {"dot_product": '.join(numbers) + "}]}").encode()
    records: list[dict[str, Any]] = [{"dot_product": float(v)} for v in values]
    if scores.entity_embedding is not None and scores.ip_embedding is not None:
        for record, entity, ip in zip(
            records, scores.entity_embedding.tolist(), scores.ip_embedding.tolist(), strict=True
        ):
            record["entity_embedding"] = entity
            record["ip_embedding"] = ip
    if media == "application/jsonlines":
        return ("\n".join(json.dumps(r) for r in records) + "\n").encode()
    return json.dumps({"predictions": records}).encode()
