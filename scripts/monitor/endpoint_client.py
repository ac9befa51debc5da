"""Score pairs on the endpoint: batches under the payload limit, several in flight where the endpoint has instances
and workers to answer them, retries with backoff on throttling."""

from __future__ import annotations

import csv
import io
import json
import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

PAYLOAD_LIMIT_BYTES = 5 * 1024 * 1024  # under SageMaker's 6 MB, with room for the HTTP envelope
ROWS_PER_REQUEST = 10_000  # an object's pairs in several requests, which concurrent calls spread over instances
MAX_ATTEMPTS = 6
FIRST_BACKOFF_SECONDS = 0.4
MAX_BACKOFF_SECONDS = 20.0
RETRYABLE = {"ThrottlingException", "ServiceUnavailable", "InternalFailure", "ModelNotReadyException"}


def csv_line(entity: str, ip: str) -> bytes:
    """One `entity,ip` row, quoted where CSV needs it (an entity may hold a comma or a quote)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([entity, ip])
    return buffer.getvalue().encode()


def batches(
    pairs: Sequence[tuple[str, str]], limit: int = PAYLOAD_LIMIT_BYTES, rows: int = ROWS_PER_REQUEST
) -> list[bytes]:
    """CSV bodies (`entity,ip` rows) each under `limit` bytes and at most `rows` rows."""
    bodies: list[bytes] = []
    current: list[bytes] = []
    size = 0
    for entity, ip in pairs:
        line = csv_line(entity, ip)
        if current and (size + len(line) > limit or len(current) == rows):
            bodies.append(b"".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line)
    if current:
        bodies.append(b"".join(current))
    return bodies


def _retryable(error: Exception) -> bool:
    response = getattr(error, "response", None) or {}
    code = response.get("Error", {}).get("Code", "")
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return code in RETRYABLE or status in {429, 503}


def backoff_seconds(attempt: int, draw: float) -> float:
    """The wait after failed attempt `attempt` (1, 2, ...): exponential from 0.4 s, capped at 20 s, with half of it
    jittered by `draw` in [0, 1) so that many functions throttled together do not retry together."""
    return min(MAX_BACKOFF_SECONDS, FIRST_BACKOFF_SECONDS * 2.0 ** (attempt - 1)) * (0.5 + draw / 2)


def score(
    client: Any,
    endpoint: str,
    pairs: Sequence[tuple[str, str]],
    sleep: Callable[[float], None] = time.sleep,
    draw: Callable[[], float] = random.random,
    concurrency: int = 1,
) -> list[float]:
    """dot_product for each pair, in order; up to `concurrency` requests in flight (boto3 clients are thread-safe)."""

    def invoke(body: bytes) -> list[float]:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                response = client.invoke_endpoint(
                    EndpointName=endpoint, ContentType="text/csv", Accept="application/jsonlines", Body=body
                )
                break
            except Exception as error:
                if attempt == MAX_ATTEMPTS or not _retryable(error):
                    raise
                sleep(backoff_seconds(attempt, draw()))
        lines = response["Body"].read().decode().splitlines()
        return [float(json.loads(line)["dot_product"]) for line in lines if line.strip()]

    bodies = batches(pairs)
    workers = max(1, min(concurrency, len(bodies)))
    if workers == 1:
        answers = [invoke(body) for body in bodies]
    else:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="score") as pool:
            answers = list(pool.map(invoke, bodies))
    scores = [value for answer in answers for value in answer]
    if len(scores) != len(pairs):
        message = f"endpoint {endpoint} returned {len(scores)} scores for {len(pairs)} pairs"
        raise RuntimeError(message)
    return scores
