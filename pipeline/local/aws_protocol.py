"""Requests to a local AWS JSON service, read as botocore's service model shapes them: JSON 1.1 and REST JSON."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

JSON_11 = "json"
REST_JSON = "rest-json"
SUPPORTED_PROTOCOLS = (JSON_11, REST_JSON)
CONTENT_TYPES = {JSON_11: "application/x-amz-json-1.1", REST_JSON: "application/json"}
TARGET_HEADER = "X-Amz-Target"
ERROR_TYPE_HEADER = "x-amzn-ErrorType"


class UnsupportedProtocolError(RuntimeError):
    """The installed botocore speaks a protocol the local service does not answer."""


class BadRequestError(ValueError):
    """A request no route of the service model matches, or whose body is not a JSON object."""


@dataclass(frozen=True)
class Route:
    """One REST JSON operation: its method, its path template as a pattern, and where each input member travels."""

    operation: str
    method: str
    pattern: re.Pattern[str]
    uri: dict[str, str]  # label -> member
    query: dict[str, tuple[str, str]]  # query parameter -> (member, shape type)
    headers: dict[str, str]  # lower-cased header -> member
    literal_length: int  # more literal characters first, so /a/b/results wins over /a/{Id}


@dataclass(frozen=True)
class ReceivedRequest:
    """What arrived: the operation it names, its input members, and the protocol it came in."""

    operation: str
    params: dict[str, Any]
    protocol: str


def _route(operation: Any) -> Route:
    template = urlsplit(operation.http["requestUri"]).path
    pattern, literal_length, position = "", 0, 0
    for label in re.finditer(r"\{([^}+]+)(\+?)\}", template):
        literal = template[position : label.start()]
        pattern += re.escape(literal)
        literal_length += len(literal)
        pattern += f"(?P<{label.group(1)}>{'.+' if label.group(2) else '[^/]+'})"
        position = label.end()
    pattern += re.escape(template[position:])
    literal_length += len(template) - position
    uri: dict[str, str] = {}
    query: dict[str, tuple[str, str]] = {}
    headers: dict[str, str] = {}
    members = operation.input_shape.members if operation.input_shape is not None else {}
    for member, shape in members.items():
        location, name = shape.serialization.get("location"), shape.serialization.get("name", member)
        if location == "uri":
            uri[name] = member
        elif location == "querystring":
            query[name] = (member, shape.type_name)
        elif location == "header":
            headers[name.lower()] = member
    return Route(
        operation.name, operation.http["method"].upper(), re.compile(pattern), uri, query, headers, literal_length
    )


def _typed(value: str, type_name: str) -> Any:
    if type_name in ("integer", "long"):
        return int(value)
    if type_name == "boolean":
        return value.lower() == "true"
    return value


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        parsed = json.loads(body or b"{}")
    except json.JSONDecodeError as error:
        message = f"the body is not JSON: {error}"
        raise BadRequestError(message) from error
    if not isinstance(parsed, dict):
        message = f"the body is JSON {type(parsed).__name__}, not an object"
        raise BadRequestError(message)
    return parsed


@dataclass(frozen=True)
class ServiceProtocol:
    """How one service's requests look on the wire, from the service model of the botocore installed here.

    JSON 1.1 requests are `POST /` with `X-Amz-Target: <prefix>.<Operation>` (the protocol of older botocore, which
    job images pin); REST JSON requests are routed by method and path template, their members gathered from the
    path, the query string, the headers and the body, as the model places them.
    """

    service: str
    target_prefix: str
    protocols: tuple[str, ...]
    routes: tuple[Route, ...]

    @classmethod
    def of(cls, service: str, target_prefix: str) -> ServiceProtocol:
        """The installed botocore's model of `service`; UnsupportedProtocolError when it speaks none we answer.

        `target_prefix` is the JSON 1.1 prefix: a model that still declares it must agree; a REST JSON model no
        longer does, while older clients still send it."""
        import botocore.session

        model = botocore.session.get_session().get_service_model(service)
        protocols = tuple(model.metadata.get("protocols") or [model.protocol])
        if not set(protocols) & set(SUPPORTED_PROTOCOLS):
            message = (
                f"botocore {botocore.__version__} models {service} with the protocols {', '.join(protocols)}; the "
                f"local {service} answers {' and '.join(SUPPORTED_PROTOCOLS)}: teach pipeline/local/aws_protocol.py "
                "the new protocol, or install the locked botocore (make install)"
            )
            raise UnsupportedProtocolError(message)
        declared = model.metadata.get("targetPrefix")
        if declared is not None and declared != target_prefix:
            message = f"botocore's {service} model declares the JSON 1.1 target prefix {declared}, not {target_prefix}"
            raise UnsupportedProtocolError(message)
        routes: tuple[Route, ...] = ()
        if REST_JSON in protocols:
            found = [_route(model.operation_model(name)) for name in model.operation_names]
            routes = tuple(sorted(found, key=lambda r: -r.literal_length))
        return cls(service, target_prefix, protocols, routes)

    def read(self, method: str, target: str, headers: Mapping[str, str], body: bytes) -> ReceivedRequest:
        """The operation and input members of one HTTP request; BadRequestError when nothing matches."""
        lowered = {name.lower(): value for name, value in headers.items()}
        amz_target = lowered.get(TARGET_HEADER.lower())
        if amz_target:
            prefix = f"{self.target_prefix}."
            if method.upper() != "POST" or not amz_target.startswith(prefix):
                message = f"{method} with {TARGET_HEADER} {amz_target!r}: JSON 1.1 requests POST {prefix}<Operation>"
                raise BadRequestError(message)
            return ReceivedRequest(amz_target.removeprefix(prefix), _json_object(body), JSON_11)
        split = urlsplit(target)
        path = split.path or "/"
        for route in self.routes:
            matched = route.pattern.fullmatch(path)
            if route.method != method.upper() or matched is None:
                continue
            params = _json_object(body) if body else {}
            params.update({route.uri[label]: unquote(value) for label, value in matched.groupdict().items()})
            for name, values in parse_qs(split.query, keep_blank_values=True).items():
                if name in route.query:
                    member, type_name = route.query[name]
                    params[member] = values if type_name == "list" else _typed(values[-1], type_name)
            for header, member in route.headers.items():
                if header in lowered:
                    params[member] = lowered[header]
            return ReceivedRequest(route.operation, params, REST_JSON)
        message = (
            f"no {self.service} operation answers {method} {path} (without {TARGET_HEADER}); this botocore models "
            f"{self.service} with {', '.join(self.protocols)}"
        )
        raise BadRequestError(message)
