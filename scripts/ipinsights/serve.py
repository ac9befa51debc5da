"""Inference server: the container paths GET /ping and POST /invocations, and the runtime path
POST /endpoints/<name>/invocations, so boto3's sagemaker-runtime client works unchanged against it.

    python -m scripts.ipinsights.serve --model-dir DIR [--host 127.0.0.1] [--port 8080] [--endpoint-name NAME]
                                       [--workers N]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

from threadpoolctl import threadpool_limits

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scripts.ipinsights.scoring import (
    MAX_PAYLOAD_BYTES,
    RequestError,
    Scorer,
    parse_request,
    render_response,
    response_format,
)
from scripts.ipinsights.workers import WORKERS_VARIABLE, default_workers, run_workers

LOG = logging.getLogger("seclake.serve")
RUNTIME_PREFIX = "/endpoints/"
READ_TIMEOUT_SECONDS = 30.0
HEX_SIZE = re.compile(rb"[0-9A-Fa-f]{1,16}")


class BodyError(ValueError):
    """The request body cannot be read as announced; `status` is the answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class InferenceServer(ThreadingHTTPServer):
    """A threading HTTP server holding one scorer, optionally under an endpoint name."""

    daemon_threads = True
    # listen backlog: the socketserver default (5) resets connections when a few dozen clients arrive at once
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], scorer: Scorer, endpoint_name: str | None = None) -> None:
        super().__init__(address, _Handler)
        self.scorer = scorer
        self.endpoint_name = endpoint_name
        self.body_deadline_seconds = READ_TIMEOUT_SECONDS  # for the whole body, however slowly it drips

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        host_text = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://{host_text}:{port}"


class _Handler(BaseHTTPRequestHandler):
    server: InferenceServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm and the client's delayed
    # ACK hold every response back by ~40 ms.
    disable_nagle_algorithm = True
    # a client that sends less than it announced (or nothing) gives up its thread after this many seconds
    timeout = READ_TIMEOUT_SECONDS

    def log_message(self, format: str, *args: object) -> None:
        LOG.debug(format, *args)

    def _send(self, status: int, body: bytes, content_type: str, error_type: str | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if error_type:
            self.send_header("x-amzn-ErrorType", error_type)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, message: str) -> None:
        error_type = "ValidationError" if status < 500 else "ModelError"
        self._send(status, json.dumps({"message": message}).encode(), "application/json", error_type)

    def do_GET(self) -> None:
        if self.path.split("?")[0] == "/ping":
            self._send(HTTPStatus.OK, b"", "text/plain")
        else:
            self._error(HTTPStatus.NOT_FOUND, f"no route GET {self.path}; the server answers GET /ping")

    def do_POST(self) -> None:
        path = unquote(self.path.split("?")[0])
        if path != "/invocations" and not (path.startswith(RUNTIME_PREFIX) and path.endswith("/invocations")):
            self._drain()
            self._error(
                HTTPStatus.NOT_FOUND, f"no route POST {path}; use /invocations or /endpoints/<name>/invocations"
            )
            return
        if path.startswith(RUNTIME_PREFIX):
            name = path[len(RUNTIME_PREFIX) : -len("/invocations")]
            if self.server.endpoint_name is not None and name != self.server.endpoint_name:
                self._drain()
                self._error(
                    HTTPStatus.NOT_FOUND,
                    f"endpoint {name!r} is not served here; this server serves {self.server.endpoint_name!r}",
                )
                return
        try:
            body = self._body()
        except BodyError as error:
            self.close_connection = True  # what is left of the body cannot be told from the next request
            self._error(error.status, str(error))
            return
        try:
            media, verbose = response_format(self.headers.get("Accept"))
            entities, ips = parse_request(body, self.headers.get("Content-Type"))
            scores = self.server.scorer.score(entities, ips, verbose)
        except RequestError as error:
            self._error(error.status, str(error))
            return
        except Exception as error:  # the client gets an answer and the server keeps serving
            LOG.exception("scoring failed")
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"scoring failed: {type(error).__name__}: {error}")
            return
        self._send(HTTPStatus.OK, render_response(scores, media), media)

    def _body(self) -> bytes:
        """The request body: Content-Length or chunked, at most the payload limit, whole within the deadline (a
        client dripping a byte at a time would otherwise hold its thread for ever: each read has its own timeout).
        A sized body is read with each read's timeout cut to what is left of the deadline; a chunked one, whose
        lines the buffered reader reads byte by byte, under a watchdog thread."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._watched(self._chunked)
        try:
            return self._sized()
        finally:
            self.connection.settimeout(self.timeout)  # the keep-alive wait for the next request

    def _watched(self, read: Callable[[], bytes]) -> bytes:
        expired = threading.Event()

        def expire() -> None:
            expired.set()
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RD)  # the blocked read ends; the answer can still be written

        watchdog = threading.Timer(self.server.body_deadline_seconds, expire)
        watchdog.daemon = True
        watchdog.start()
        try:
            return read()
        except TimeoutError:
            raise self._too_slow() from None
        except BodyError:
            if expired.is_set():
                raise self._too_slow() from None
            raise
        finally:
            watchdog.cancel()
            if expired.is_set():
                self.close_connection = True

    def _too_slow(self) -> BodyError:
        message = f"the body did not arrive within {self.server.body_deadline_seconds:.0f} s"
        return BodyError(HTTPStatus.REQUEST_TIMEOUT, message)

    def _sized(self) -> bytes:
        text = self.headers.get("Content-Length") or "0"
        if not text.strip().isdigit():
            message = f"Content-Length {text!r} is not a byte count"
            raise BodyError(HTTPStatus.BAD_REQUEST, message)
        length = int(text)
        if length > MAX_PAYLOAD_BYTES:
            self._drain(length)
            message = f"payload is {length:,} bytes; the limit is {MAX_PAYLOAD_BYTES:,} (6 MB): split the request"
            raise BodyError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, message)
        deadline = time.monotonic() + self.server.body_deadline_seconds
        parts: list[bytes] = []
        received = 0
        while received < length:
            left = deadline - time.monotonic()
            if left <= 0:
                raise self._too_slow()
            self.connection.settimeout(min(left, self.timeout))
            try:
                part = self.rfile.read1(min(length - received, 1 << 20))  # at most one read of the socket
            except TimeoutError:
                raise self._too_slow() from None
            if not part:
                message = f"the body ended after {received:,} of the {length:,} bytes Content-Length announced"
                raise BodyError(HTTPStatus.BAD_REQUEST, message)
            parts.append(part)
            received += len(part)
        return b"".join(parts)

    def _chunked(self) -> bytes:
        parts: list[bytes] = []
        size = 0
        while True:
            line = self.rfile.readline(1024).split(b";")[0].strip()  # RFC 9112 allows whitespace before ";"
            if not HEX_SIZE.fullmatch(line):  # int(x, 16) would take "-1", "+2" or "0x3": read(-1) reads to the end
                message = f"chunk size {line[:20]!r} is not hexadecimal digits"
                raise BodyError(HTTPStatus.BAD_REQUEST, message)
            chunk = int(line, 16)
            if chunk == 0:
                while self.rfile.readline(1024).strip():  # trailers
                    pass
                return b"".join(parts)
            size += chunk
            if size > MAX_PAYLOAD_BYTES:
                message = f"chunked payload exceeds the limit of {MAX_PAYLOAD_BYTES:,} bytes (6 MB): split the request"
                raise BodyError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, message)
            parts.append(self.rfile.read(chunk))
            self.rfile.readline(16)

    def _drain(self, length: int | None = None) -> None:
        text = self.headers.get("Content-Length") or "0"
        remaining = (int(text) if text.strip().isdigit() else 0) if length is None else length
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1 << 20))
            if not chunk:
                break
            remaining -= len(chunk)


def build_server(
    model_dir: Path, host: str = "127.0.0.1", port: int = 8080, endpoint_name: str | None = None
) -> InferenceServer:
    """Load the model and bind the server; port 0 picks a free port."""
    import torch

    torch.set_num_threads(1)
    return InferenceServer((host, port), Scorer.from_model_dir(model_dir), endpoint_name)


def start_server(
    model_dir: Path, host: str = "127.0.0.1", port: int = 8080, endpoint_name: str | None = None
) -> tuple[InferenceServer, threading.Thread]:
    """Load the model and serve it on a background thread of this process; port 0 picks a free port."""
    server = build_server(model_dir, host, port, endpoint_name)
    thread = threading.Thread(target=server.serve_forever, name="ipinsights-server", daemon=True)
    thread.start()
    return server, thread


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model")))
    parser.add_argument("--host", default="127.0.0.1", help="Bind address (a container uses 0.0.0.0)")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--endpoint-name", default=None, help="Only answer /endpoints/<this>/invocations")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help=f"Processes answering requests (default: ${WORKERS_VARIABLE}, else one per CPU)",
    )
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        workers = arguments.workers or default_workers(dict(os.environ))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    # one BLAS thread per worker: the workers are the parallelism, and BLAS threads spinning for a core another
    # worker holds make a 1,000-row matrix product tens of times slower
    threadpool_limits(limits=1)
    server = build_server(arguments.model_dir, arguments.host, arguments.port, arguments.endpoint_name)
    LOG.info("serving %s on %s", arguments.model_dir, server.url)
    return run_workers(server, workers)


if __name__ == "__main__":
    raise SystemExit(main())
