"""The inference server answers the built-in's request and response formats, through boto3, on a real socket."""

from __future__ import annotations

import contextlib
import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from benchmarks.logins import simulate_logins
from scripts.ipinsights import batch
from scripts.ipinsights.scoring import Scorer
from scripts.ipinsights.serve import InferenceServer, start_server
from scripts.ipinsights.train import main as train_main

ENDPOINT = "seclake-ipinsights"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("job")
    logins = simulate_logins(users=200, events=4000, seed=2)
    folder = root / "input" / "data" / "train"
    folder.mkdir(parents=True)
    (folder / "train.csv").write_text("".join(f"{u},{ip}\n" for u, ip in zip(logins.users, logins.ips, strict=True)))
    (root / "input" / "config").mkdir(parents=True)
    (root / "input" / "config" / "hyperparameters.json").write_text(
        json.dumps({"num_entity_vectors": "400", "vector_dim": "8", "epochs": "1", "mini_batch_size": "500"})
    )
    assert train_main(["--root", str(root), "--threads", "1"]) == 0
    return root / "model"


@pytest.fixture(scope="module")
def server(model_dir: Path) -> Iterator[InferenceServer]:
    running, _ = start_server(model_dir, "127.0.0.1", 0, ENDPOINT)
    yield running
    running.shutdown()
    running.server_close()


@pytest.fixture
def runtime(server: InferenceServer, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", server.url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return boto3.client("sagemaker-runtime", region_name="us-east-1", config=Config(retries={"max_attempts": 1}))


PAIRS = [("user_1", "1.2.3.4"), ("user_2", "2001:db8::7"), ("user with, comma", "10.0.0.1")]


def _expected(model_dir: Path) -> list[float]:
    scores = Scorer.from_model_dir(model_dir).score([p[0] for p in PAIRS], [p[1] for p in PAIRS])
    return [float(v) for v in scores.dot_product.tolist()]


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/csv", 'user_1,1.2.3.4\nuser_2,2001:db8::7\n"user with, comma",10.0.0.1\n'),
        (
            "application/json",
            json.dumps(
                {
                    "instances": [
                        {"data": {"features": {"values": ["user_1", "1.2.3.4"]}}},
                        {"features": ["user_2", "2001:db8::7"]},
                        {"features": ["user with, comma", "10.0.0.1"]},
                    ]
                }
            ),
        ),
        (
            "application/jsonlines",
            '{"features": ["user_1", "1.2.3.4"]}\n'
            '{"data": {"features": {"values": ["user_2", "2001:db8::7"]}}}\n'
            '{"features": ["user with, comma", "10.0.0.1"]}\n',
        ),
    ],
)
@pytest.mark.parametrize("accept", ["application/json", "application/jsonlines"])
def test_every_content_type_through_boto3(
    runtime: Any,
    model_dir: Path,
    content_type: str,
    body: str,
    accept: str,
) -> None:
    response = runtime.invoke_endpoint(
        EndpointName=ENDPOINT, ContentType=content_type, Accept=accept, Body=body.encode()
    )
    assert response["ContentType"] == accept
    payload = response["Body"].read().decode()
    if accept == "application/json":
        records = json.loads(payload)["predictions"]
    else:
        records = [json.loads(line) for line in payload.splitlines()]
    assert [r["dot_product"] for r in records] == pytest.approx(_expected(model_dir), rel=1e-6)
    assert all(set(r) == {"dot_product"} for r in records)


def test_verbose_adds_embeddings(runtime: Any, model_dir: Path) -> None:
    response = runtime.invoke_endpoint(
        EndpointName=ENDPOINT, ContentType="text/csv", Accept="application/json; verbose=True", Body=b"user_1,1.2.3.4\n"
    )
    record = json.loads(response["Body"].read())["predictions"][0]
    assert len(record["entity_embedding"]) == len(record["ip_embedding"]) == 8
    assert record["dot_product"] == pytest.approx(
        float(np.dot(record["entity_embedding"], record["ip_embedding"])), rel=1e-5
    )


@pytest.mark.parametrize(
    ("content_type", "body", "status", "message"),
    [
        ("application/x-parquet", b"x", 415, "content type 'application/x-parquet' is not supported"),
        ("text/csv", b"user_1,1.2.3.4\nuser_2,1.2.3.999\n", 400, "row 2: '1.2.3.999' is not an IPv4 or IPv6 address"),
        ("text/csv", b"user_1,1.2.3.4\nuser_2\n", 400, "row 2: expected 2 string fields entity,ip"),
        ("application/json", b'{"rows": []}', 400, 'JSON body must be {"instances": [...]}'),
        ("text/csv", b"a,1.2.3.4\n" * 700_000, 413, "the limit is 6,291,456 (6 MB)"),
    ],
)
def test_bad_requests_are_refused_with_the_reason(
    runtime: Any,
    content_type: str,
    body: bytes,
    status: int,
    message: str,
) -> None:
    with pytest.raises(ClientError) as raised:
        runtime.invoke_endpoint(EndpointName=ENDPOINT, ContentType=content_type, Body=body)
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert message in raised.value.response["Error"]["Message"]


def test_container_paths_and_unknown_endpoint(server: InferenceServer) -> None:
    with urllib.request.urlopen(f"{server.url}/ping") as response:
        assert response.status == 200
    request = urllib.request.Request(
        f"{server.url}/invocations", data=b"user_1,1.2.3.4\n", headers={"Content-Type": "text/csv"}
    )
    with urllib.request.urlopen(request) as response:
        assert "dot_product" in json.loads(response.read())["predictions"][0]
    other = urllib.request.Request(
        f"{server.url}/endpoints/other/invocations", data=b"user_1,1.2.3.4\n", headers={"Content-Type": "text/csv"}
    )
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(other)
    assert raised.value.code == 404
    assert server.server_address[0] == "127.0.0.1"


def test_batch_scorer_is_row_aligned(model_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "eval"
    source.mkdir()
    (source / "pairs.csv").write_text("".join(f"{e},{ip}\n" for e, ip in PAIRS[:2]))
    written = batch.run(model_dir, source, tmp_path / "out")
    assert written == {"pairs.csv": 2}
    lines = (tmp_path / "out" / "pairs.csv.out").read_text().splitlines()
    assert [json.loads(line)["dot_product"] for line in lines] == pytest.approx(_expected(model_dir)[:2], rel=1e-6)


def _raw(server: InferenceServer, request: bytes, timeout: float = 10.0) -> tuple[int, dict[str, str], bytes]:
    """Send bytes on a fresh socket; return (status, headers, body) of the answer."""
    import socket

    host, port = server.server_address[:2]
    with socket.create_connection((str(host), int(port)), timeout=timeout) as connection:
        connection.sendall(request)
        connection.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers, body


def _post(body: bytes, headers: str = "", content_type: str = "text/csv") -> bytes:
    return (
        f"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n{headers}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def test_hostile_requests_get_an_answer_not_a_dropped_connection(server: InferenceServer) -> None:
    long_entity = b"e" * 200_000 + b",1.2.3.4\n"
    status, _, body = _raw(server, _post(long_entity))
    assert status == 200 and b"dot_product" in body  # a field over csv's default 128 KiB limit
    deep = b"[" * 1000 + b"]" * 1000
    status, _, body = _raw(server, _post(deep, content_type="application/json"))
    assert status == 400 and b"nested too deeply" in body
    status, _, body = _raw(server, b"POST /invocations HTTP/1.1\r\nContent-Length: many\r\n\r\n")
    assert status == 400 and b"Content-Length 'many' is not a byte count" in body
    status, _, body = _raw(server, _post(b"user_1,1.2.3.4\n", "Accept: application/json, */*\r\n"))
    assert status == 200 and json.loads(body)["predictions"][0]["dot_product"] is not None
    status, _, body = _raw(server, _post(b"user_1,1.2.3.4\n", "Accept: text/html, application/jsonlines\r\n"))
    assert status == 200 and b'{"dot_product"' in body
    chunked = b"POST /invocations HTTP/1.1\r\nContent-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n"
    chunked += b"8\r\nuser_1,1\r\n6\r\n.2.3.4\r\n0\r\n\r\n"
    status, _, body = _raw(server, chunked)
    assert status == 200 and len(json.loads(body)["predictions"]) == 1


def test_a_client_that_sends_less_than_it_announced_is_answered_and_let_go(
    server: InferenceServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    from scripts.ipinsights import serve

    monkeypatch.setattr(serve._Handler, "timeout", 0.5)
    status, headers, body = _raw(server, _post(b"user_1,1.2.3.4\n")[:-5])  # the client closes its side early
    assert status == 400 and b"ended after" in body and headers.get("Connection") == "close"
    host, port = server.server_address[:2]
    with socket.create_connection((str(host), int(port)), timeout=5) as stalled:
        stalled.sendall(_post(b"user_1,1.2.3.4\n")[:-5])  # ...and this one just stops sending
        answer = b""
        while chunk := stalled.recv(65536):
            answer += chunk
    assert b" 408 " in answer.split(b"\r\n")[0] and b"did not arrive within" in answer


def test_fifty_simultaneous_connections_are_all_answered(server: InferenceServer) -> None:
    """The listen backlog: a burst of raw clients, none reset."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(lambda _: _raw(server, _post(b"user_1,1.2.3.4\n"))[0], range(200)))
    assert statuses == [200] * 200


def _answer_within(server: InferenceServer, send: Any, seconds: float) -> bytes:
    """What the server answers while `send(connection)` is still writing, read until it closes (or `seconds`)."""
    import socket
    import threading
    import time

    host, port = server.server_address[:2]
    answer = b""
    with socket.create_connection((str(host), int(port)), timeout=seconds) as connection:
        writer = threading.Thread(target=send, args=(connection,), daemon=True)
        writer.start()
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                chunk = connection.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            answer += chunk
    return answer


def test_a_negative_chunk_size_is_refused_at_once_not_read_to_the_end(server: InferenceServer) -> None:
    """int("-1", 16) is -1 and read(-1) reads to the end of the stream, past the 6 MB limit: a chunk size is hex
    digits or a 400."""
    import time

    head = b"POST /invocations HTTP/1.1\r\nContent-Type: text/csv\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n"

    def send(connection: Any) -> None:
        connection.sendall(head)
        for _ in range(40):  # keeps streaming, never closes within the test
            time.sleep(0.1)
            with contextlib.suppress(OSError):
                connection.sendall(b"x" * 65536)

    answer = _answer_within(server, send, 3.0)
    assert b" 400 " in answer.split(b"\r\n")[0] and b"is not hexadecimal digits" in answer


def test_a_client_dripping_its_body_gets_a_408_within_the_deadline(server: InferenceServer) -> None:
    """Each read has its own timeout, so one byte every 0.3 s would hold a thread for ever: the body as a whole has a
    deadline, after which the client is answered 408 and let go."""
    import time

    server.body_deadline_seconds = 1.0
    try:

        def send(connection: Any) -> None:
            connection.sendall(_post(b"e" * 100 + b",1.2.3.4\n")[:-100])
            for _ in range(30):
                time.sleep(0.3)
                with contextlib.suppress(OSError):
                    connection.sendall(b"e")

        began = time.monotonic()
        answer = _answer_within(server, send, 6.0)
        assert b" 408 " in answer.split(b"\r\n")[0] and b"did not arrive within 1 s" in answer
        assert time.monotonic() - began < 4.0
    finally:
        server.body_deadline_seconds = 30.0


def test_the_numpy_scorer_gives_the_networks_scores(tmp_path: Path) -> None:
    """The server scores in numpy from the network's weights: the same numbers as the torch network's forward pass,
    with two encoder layers (a ReLU between them) and IPv4 and IPv6 addresses."""
    import torch

    from scripts.ipinsights.features import address_arrays
    from scripts.ipinsights.hyperparameters import parse_hyperparameters
    from scripts.ipinsights.model import IPInsightsNetwork, ModelSpec, encode_pairs

    hyperparameters = parse_hyperparameters(
        {"num_entity_vectors": "50", "vector_dim": "16", "num_ip_encoder_layers": "2"}
    )
    torch.manual_seed(3)
    network = IPInsightsNetwork(ModelSpec(hyperparameters, prefix_buckets=997, hash_seed=11))
    for layer in network.layers:
        assert isinstance(layer, torch.nn.Linear)
        torch.nn.init.normal_(layer.bias)  # a bias that leaves some units negative: the ReLU matters
    network.eval()
    entities = [f"user_{i % 7}" for i in range(40)]
    ips = [f"10.{i}.{i * 3 % 256}.{i * 7 % 256}" if i % 3 else f"2001:db8::{i:x}" for i in range(40)]
    encoded = encode_pairs(network.spec, entities, *address_arrays(ips))
    with torch.no_grad():
        expected = (
            network.entity_vectors(torch.from_numpy(encoded.entity_buckets))
            * network.ip_vectors(torch.from_numpy(encoded.ip_features))
        ).sum(dim=1)
    scores = Scorer(network).score(entities, ips, verbose=True)
    assert np.allclose(scores.dot_product, expected.numpy(), atol=1e-5)
    assert scores.ip_embedding is not None and scores.ip_embedding.shape == (40, 16)


@pytest.mark.parametrize("media", ["application/json", "application/jsonlines"])
def test_a_response_is_the_bytes_json_writes(media: str) -> None:
    """The fast rendering writes exactly what json.dumps of the records writes, NaN and infinities included."""
    from scripts.ipinsights.scoring import Scores, render_response

    values = np.random.default_rng(5).normal(size=300) * 10.0 ** np.random.default_rng(6).integers(-9, 9, 300)
    values[:5] = [0.0, -0.0, np.nan, np.inf, 5e-324]
    for dot in (values, values.astype(np.float32), values[:1]):
        records = [{"dot_product": float(v)} for v in dot.tolist()]
        if media == "application/jsonlines":
            expected = "".join(json.dumps(record) + "\n" for record in records)
        else:
            expected = json.dumps({"predictions": records})
        assert render_response(Scores(dot), media) == expected.encode()


@pytest.mark.parametrize(
    "text",
    ["a,b\n\nc,d\n", "a,b,c\n", " \n", "a\n", "a,b", "a,,\n", ",\n", 'x,"1.2.3.4"\n', "a,b\r\nc,d\r\n", "a,b\n\n\n"],
)
def test_csv_bodies_split_as_the_csv_module_splits_them(text: str) -> None:
    import csv
    import io

    from scripts.ipinsights.scoring import _csv_rows

    assert _csv_rows(text) == [row for row in csv.reader(io.StringIO(text)) if row]


def test_addresses_parse_the_same_on_the_ipv4_path_and_the_general_one() -> None:
    """All-IPv4 lists take one pass of C calls; a list with anything else the general path, whose answer is the
    same, and a bad address is still named by its row."""
    from scripts.addresses import AddressError, address_arrays

    dotted = ["10.0.0.1", "255.255.255.255", "0.0.0.0", "192.168.1.20"]
    mixed = [*dotted, " 8.8.8.8", "::ffff:1.2.3.4", "2001:db8::1"]
    families, high, low = address_arrays(dotted)
    general = address_arrays(mixed)
    assert families.tolist() == general[0][:4].tolist() == [4, 4, 4, 4]
    assert low.tolist() == general[2][:4].tolist() == [0x0A000001, 0xFFFFFFFF, 0, 0xC0A80114]
    assert high.tolist() == [0, 0, 0, 0]
    assert general[0].tolist()[4:] == [4, 4, 6] and general[2].tolist()[4:6] == [0x08080808, 0x01020304]
    with pytest.raises(AddressError, match=r"row 3: '10\.0\.0\.01'"):
        address_arrays(["10.0.0.1", "10.0.0.2", "10.0.0.01"])


def _children(pid: int) -> set[int]:
    found = set()
    for status in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = status.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                found.add(int(status.parent.name))
    return found


def _serve_in_workers(model_dir: Path, workers: int) -> tuple[Any, str]:
    import socket
    import subprocess
    import sys
    import time

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "scripts.ipinsights.serve", "--model-dir", str(model_dir), "--port", str(port)]
    process = subprocess.Popen([*command, "--workers", str(workers)], stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(150):
        with contextlib.suppress(OSError), urllib.request.urlopen(f"{url}/ping", timeout=1):
            return process, url
        time.sleep(0.1)
    process.kill()
    pytest.fail("the server did not answer /ping within 15 s")


def test_workers_share_the_port_and_stop_with_their_supervisor(model_dir: Path) -> None:
    """--workers 2: two processes answer on one port; SIGTERM stops them all; a supervisor killed outright leaves no
    worker holding the port."""
    import signal
    import time

    process, url = _serve_in_workers(model_dir, 2)
    try:
        workers = _children(process.pid)
        assert len(workers) == 2
        body = b"user_1,1.2.3.4\nuser_2,10.0.0.1\n"
        for _ in range(10):
            request = urllib.request.Request(f"{url}/invocations", body, {"Content-Type": "text/csv"})
            with urllib.request.urlopen(request, timeout=10) as response:
                assert len(json.loads(response.read())["predictions"]) == 2
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert not any(_alive(pid) for pid in workers)
    finally:
        process.kill()
    process, url = _serve_in_workers(model_dir, 2)
    workers = _children(process.pid)
    process.kill()
    process.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in workers), "a worker outlived its killed supervisor"


def _alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
