"""Execute a pipeline definition JSON: order the steps, resolve their arguments, run them, record everything."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.local.caching import cache_key, caching
from pipeline.local.expressions import ResolutionContext, evaluate_condition, references, resolve
from pipeline.local.handlers import HANDLERS
from pipeline.local.identity import Identity
from pipeline.local.processing_jobs import load_property_files
from pipeline.local.s3map import S3Map
from pipeline.local.state import Store
from pipeline.local.step_environment import StepEnvironment

STATE_FILE = "state.sqlite"
CACHE_HIT_STATUS = "Succeeded (cache hit)"


class DefinitionError(ValueError):
    """The definition cannot be executed (a cycle, a dependency on a missing step)."""


@dataclass
class ExecutionResult:
    """How an execution ended."""

    execution: str
    status: str
    failure: str | None


def _dependencies(step: dict[str, Any], names: set[str]) -> set[str]:
    explicit = set(step.get("DependsOn", []))
    implicit = references(step.get("Arguments", {})) | references(step.get("PropertyFiles", []))
    if step["Type"] == "Condition":
        implicit |= references(step["Arguments"].get("Conditions", []))
    found = (explicit | implicit) - {step["Name"]}
    missing = sorted(found - names)
    if missing:
        message = f"step {step['Name']} depends on {missing}, which are not steps of this pipeline"
        raise DefinitionError(message)
    return found


def execution_order(steps: list[dict[str, Any]], known: set[str] | None = None) -> list[dict[str, Any]]:
    """Top-level steps in dependency order (DependsOn and property references), definition order among equals."""
    names = {s["Name"] for s in steps} | (known or set())
    nested = {
        n["Name"]
        for s in steps
        if s["Type"] == "Condition"
        for n in s["Arguments"].get("IfSteps", []) + s["Arguments"].get("ElseSteps", [])
    }
    names |= nested
    pending = list(steps)
    done: set[str] = set(known or set())
    ordered = []
    while pending:
        for step in pending:
            needs = _dependencies(step, names) - nested
            if needs <= done:
                ordered.append(step)
                done.add(step["Name"])
                pending.remove(step)
                break
        else:
            message = f"steps {[s['Name'] for s in pending]} depend on each other in a cycle"
            raise DefinitionError(message)
    return ordered


def _parameters(definition: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    declared = {p["Name"]: p for p in definition.get("Parameters", [])}
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        message = f"unknown parameter(s) {', '.join(unknown)}; the pipeline has: {', '.join(sorted(declared))}"
        raise DefinitionError(message)
    values = {}
    required = sorted(name for name, parameter in declared.items() if "DefaultValue" not in parameter)
    missing = [name for name in required if name not in overrides]
    if missing:
        message = (
            f"parameter(s) {', '.join(missing)} have no default value: give each a value when starting the execution "
            "(as StartPipelineExecution requires), e.g. EndDay=20261128"
        )
        raise DefinitionError(message)
    for name, parameter in declared.items():
        raw = overrides.get(name, parameter.get("DefaultValue"))
        kind = parameter["Type"]
        try:
            values[name] = (
                int(raw)
                if kind == "Integer"
                else float(raw)
                if kind == "Float"
                else (str(raw).lower() == "true" if kind == "Boolean" else raw)
            )
        except (TypeError, ValueError):
            message = f"parameter {name}={raw!r} is not a valid {kind}"
            raise DefinitionError(message) from None
        allowed = parameter.get("EnumValues")
        if allowed and values[name] not in allowed:
            message = f"parameter {name}={raw!r}; allowed: {', '.join(map(str, allowed))}"
            raise DefinitionError(message)
    return values


class LocalExecutor:
    """Runs definitions under one SECLAKE_HOME."""

    def __init__(
        self,
        home: Path,
        log: Callable[[str], None] = lambda line: None,
        on_step: Callable[[str, str], None] = lambda step, status: None,
        identity: Identity | None = None,
    ) -> None:
        self.identity = identity  # the account's roles and their policies; None checks nothing
        self.home = home.resolve()  # jobs run in their own folders: every path handed to them must be absolute
        self.store = Store(self.home / STATE_FILE)
        self.s3 = S3Map(self.home / "s3")
        self.log = log
        self.on_step = on_step
        self.pipeline_name = ""

    def execute(
        self, definition: dict[str, Any], pipeline_name: str, overrides: dict[str, Any] | None = None
    ) -> ExecutionResult:
        """Run every step; a failed step fails the execution and nothing downstream runs."""
        parameters = _parameters(definition, overrides or {})
        execution = f"local-{dt.datetime.now(dt.UTC):%Y%m%d%H%M%S}-{secrets.token_hex(3)}"
        started = dt.datetime.now(dt.UTC)
        context = ResolutionContext(
            parameters=parameters,
            execution={
                "PipelineExecutionId": execution,
                "PipelineName": pipeline_name,
                "PipelineExecutionArn": f"arn:aws:sagemaker:local:000000000000:pipeline/{pipeline_name}/execution/"
                f"{execution}",
                "StartDateTime": started.isoformat(),
                "CurrentDateTime": started.isoformat(),
            },
        )
        self.pipeline_name = pipeline_name
        self.store.start_execution(execution, pipeline_name, parameters, json.dumps(definition))
        env = StepEnvironment(
            execution, self.home, self.s3, self.store, context.property_files, self.log, self.identity
        )
        try:
            order = execution_order(definition["Steps"])
        except DefinitionError as error:
            self.store.finish_execution(execution, "Failed", str(error))
            return ExecutionResult(execution, "Failed", str(error))
        for step in order:
            failure = self._run(step, context, env, parent=None)
            if failure is not None:
                self.store.finish_execution(execution, "Failed", failure)
                return ExecutionResult(execution, "Failed", failure)
        self.store.finish_execution(execution, "Succeeded")
        return ExecutionResult(execution, "Succeeded", None)

    def _run(
        self, step: dict[str, Any], context: ResolutionContext, env: StepEnvironment, parent: str | None
    ) -> str | None:
        name, kind = step["Name"], step["Type"]
        self.store.record_step(env.execution, name, kind, "Executing", parent)
        self.on_step(name, "Executing")
        try:
            if kind == "Condition":
                return self._condition(step, context, env)
            if kind == "Fail":
                message = str(resolve(step["Arguments"].get("ErrorMessage", "FailStep reached"), context))
                self.store.record_step(env.execution, name, kind, "Failed", parent, failure=message)
                self.on_step(name, "Failed")
                return f"{name}: {message}"
            if kind not in HANDLERS:
                message = (
                    f"step type {kind!r} has no local handler; supported: {', '.join(sorted(HANDLERS))}, "
                    "Condition, Fail"
                )
                raise DefinitionError(message)
            arguments = resolve(step.get("Arguments", {}), context)
            enabled, expire_seconds = caching(step)
            key = cache_key(kind, arguments) if enabled else None
            hit = self.store.cached_step(self.pipeline_name, name, key, time.time() - expire_seconds) if key else None
            if hit is not None:
                source, properties = hit
                if kind == "Processing":
                    load_property_files(step, properties, env)
                self.log(f"{name}: cache hit, reusing execution {source}'s results")
            else:
                source = None
                properties = HANDLERS[kind](step, arguments, env)
                if key is not None:
                    self.store.remember_step(self.pipeline_name, name, key, env.execution, properties)
        except Exception as error:  # a step's failure is recorded with its reason, as the service shows it
            reason = f"{type(error).__name__}: {error}"
            self.store.record_step(env.execution, name, kind, "Failed", parent, failure=reason)
            self.on_step(name, "Failed")
            return f"{name}: {reason}"
        context.properties[name] = properties
        # as ListPipelineExecutionSteps reports it: the step succeeded, with the execution whose results it reused
        recorded = properties if source is None else {**properties, "CacheHitResult": {"SourceExecution": source}}
        self.store.record_step(env.execution, name, kind, "Succeeded", parent, recorded)
        self.on_step(name, "Succeeded" if source is None else CACHE_HIT_STATUS)
        return None

    def _condition(self, step: dict[str, Any], context: ResolutionContext, env: StepEnvironment) -> str | None:
        arguments = step["Arguments"]
        outcome = all(evaluate_condition(c, context) for c in arguments.get("Conditions", []))
        self.store.record_step(
            env.execution, step["Name"], "Condition", "Succeeded", None, {"Outcome": str(outcome).lower()}
        )
        self.on_step(step["Name"], "Succeeded")
        context.properties[step["Name"]] = {"Outcome": outcome}
        branch = arguments.get("IfSteps" if outcome else "ElseSteps", [])
        known = set(context.properties)
        for nested in execution_order(branch, known):
            failure = self._run(nested, context, env, parent=step["Name"])
            if failure is not None:
                return failure
        return None
