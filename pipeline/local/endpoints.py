"""Endpoint config and endpoint steps: a local inference server per endpoint, replaced on update."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

from pipeline.local import authorization
from pipeline.local.jobs import python
from pipeline.local.models import model_dir_of
from pipeline.local.step_environment import StepEnvironment, StepError


def endpoint_config(step: dict[str, Any], args: dict[str, Any], env: StepEnvironment) -> dict[str, Any]:
    variant = args["ProductionVariants"][0]
    resource = f"endpoint-config/{args['EndpointConfigName']}"
    authorization.create(env, step["Name"], "sagemaker:CreateEndpointConfig", resource)
    if env.store.model(variant["ModelName"]) is None:
        message = f"endpoint config {args['EndpointConfigName']}: model {variant['ModelName']!r} does not exist"
        raise StepError(message)
    env.store.create_endpoint_config(args["EndpointConfigName"], variant["ModelName"])
    return {
        "EndpointConfigName": args["EndpointConfigName"],
        "EndpointConfigArn": f"arn:aws:sagemaker:local:000000000000:endpoint-config/{args['EndpointConfigName']}",
    }


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def stop_endpoint(env: StepEnvironment, name: str) -> None:
    """Stop the local server of an endpoint, if one runs."""
    import contextlib
    import signal

    current = env.store.endpoint(name)
    if current and current["pid"]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(current["pid"]), signal.SIGTERM)


def endpoint(step: dict[str, Any], args: dict[str, Any], env: StepEnvironment) -> dict[str, Any]:
    """Create or update: start a server for the config's model under the endpoint's name, then stop the old one."""
    name, config_name = args["EndpointName"], args["EndpointConfigName"]
    action = "sagemaker:UpdateEndpoint" if env.store.endpoint(name) else "sagemaker:CreateEndpoint"
    authorization.create(env, step["Name"], action, f"endpoint/{name}")
    authorization.create(env, step["Name"], action, f"endpoint-config/{config_name}")  # both are authorised
    config = env.store.endpoint_config(config_name)
    if config is None:
        message = f"endpoint {name}: endpoint config {config_name!r} does not exist"
        raise StepError(message)
    folder = env.home / "endpoints" / name / config_name
    model = env.store.model(config["model_name"])
    if model is not None:
        authorization.get(env, step["Name"], authorization.execution_role(env), model["model_data_url"])
    model_dir = model_dir_of(env, config["model_name"], folder)
    port = _free_port()
    log = (folder / "server.log").open("w")
    process = subprocess.Popen(
        [
            python(),
            "-m",
            "scripts.ipinsights.serve",
            "--model-dir",
            str(model_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--endpoint-name",
            name,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env={**__import__("os").environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            message = f"endpoint {name}: the server exited ({folder / 'server.log'})"
            raise StepError(message)
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            time.sleep(0.3)
    else:
        message = f"endpoint {name}: no answer on {url}/ping within 120 s"
        raise StepError(message)
    stop_endpoint(env, name)
    env.store.upsert_endpoint(name, config_name, config["model_name"], url, process.pid)
    env.log(f"{step['Name']}: endpoint {name} serves {config['model_name']} at {url}")
    return {
        "EndpointName": name,
        "EndpointStatus": "InService",
        "EndpointArn": f"arn:aws:sagemaker:local:000000000000:endpoint/{name}",
    }
