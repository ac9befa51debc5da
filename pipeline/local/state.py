"""Local runtime state in SQLite: executions, step runs, training jobs, models, the registry, endpoints."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from scripts.handoff.registry import APPROVAL_STATUSES

SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    id TEXT PRIMARY KEY, pipeline TEXT NOT NULL, status TEXT NOT NULL, started REAL NOT NULL, ended REAL,
    parameters TEXT NOT NULL, failure TEXT, definition TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS step_runs (
    execution TEXT NOT NULL, step TEXT NOT NULL, type TEXT NOT NULL, status TEXT NOT NULL, started REAL,
    ended REAL, properties TEXT, failure TEXT, parent TEXT, PRIMARY KEY (execution, step));
CREATE TABLE IF NOT EXISTS training_jobs (
    name TEXT PRIMARY KEY, execution TEXT NOT NULL, step TEXT NOT NULL, status TEXT NOT NULL,
    hyperparameters TEXT NOT NULL, metric REAL, artifact TEXT, started REAL, ended REAL, failure TEXT);
CREATE TABLE IF NOT EXISTS models (
    name TEXT PRIMARY KEY, execution TEXT NOT NULL, image TEXT NOT NULL, model_data_url TEXT NOT NULL,
    created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS model_packages (
    group_name TEXT NOT NULL, version INTEGER NOT NULL, arn TEXT NOT NULL, status TEXT NOT NULL,
    metrics TEXT, model_data_url TEXT NOT NULL, execution TEXT NOT NULL, created REAL NOT NULL,
    customer_metadata TEXT, PRIMARY KEY (group_name, version));
CREATE TABLE IF NOT EXISTS endpoint_configs (
    name TEXT PRIMARY KEY, model_name TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS step_cache (
    pipeline TEXT NOT NULL, step TEXT NOT NULL, key TEXT NOT NULL, execution TEXT NOT NULL,
    properties TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS endpoints (
    name TEXT PRIMARY KEY, config_name TEXT NOT NULL, model_name TEXT NOT NULL, url TEXT, pid INTEGER,
    status TEXT NOT NULL, updated REAL NOT NULL);
"""


@dataclass(frozen=True)
class StepRun:
    step: str
    type: str
    status: str
    started: float | None
    ended: float | None
    properties: dict[str, Any]
    failure: str | None
    parent: str | None


class Store:
    """A thin typed layer over the SQLite file; one connection per call keeps it safe across processes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.executescript(SCHEMA)
            columns = {row["name"] for row in db.execute("PRAGMA table_info(model_packages)")}
            if "customer_metadata" not in columns:  # a home made before packages named their detector
                db.execute("ALTER TABLE model_packages ADD COLUMN customer_metadata TEXT")

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30)
        db.row_factory = sqlite3.Row
        try:
            with db:
                yield db
        finally:
            db.close()

    # executions
    def start_execution(self, execution: str, pipeline: str, parameters: dict[str, Any], definition: str) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT INTO executions VALUES (?, ?, 'Executing', ?, NULL, ?, NULL, ?)",
                (execution, pipeline, time.time(), json.dumps(parameters, sort_keys=True), definition),
            )

    def finish_execution(self, execution: str, status: str, failure: str | None = None) -> None:
        with self._connect() as db:
            db.execute(
                "UPDATE executions SET status = ?, ended = ?, failure = ? WHERE id = ?",
                (status, time.time(), failure, execution),
            )

    def executions(self, limit: int = 20) -> list[dict[str, Any]]:
        with self._connect() as db:
            rows = db.execute(
                "SELECT id, pipeline, status, started, ended, failure FROM executions ORDER BY started DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [dict(r) for r in rows]

    def execution(self, execution: str) -> dict[str, Any] | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT * FROM executions WHERE id = ? OR id LIKE ?", (execution, f"{execution}%")
            ).fetchone()
        return dict(row) if row else None

    # steps
    def record_step(
        self,
        execution: str,
        step: str,
        step_type: str,
        status: str,
        parent: str | None = None,
        properties: dict[str, Any] | None = None,
        failure: str | None = None,
    ) -> None:
        now = time.time()
        with self._connect() as db:
            existing = db.execute(
                "SELECT started FROM step_runs WHERE execution = ? AND step = ?", (execution, step)
            ).fetchone()
            started = (
                existing["started"] if existing and existing["started"] else (now if status == "Executing" else None)
            )
            ended = now if status in {"Succeeded", "Failed"} else None
            db.execute(
                "INSERT OR REPLACE INTO step_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    execution,
                    step,
                    step_type,
                    status,
                    started,
                    ended,
                    json.dumps(properties or {}, default=str),
                    failure,
                    parent,
                ),
            )

    def remember_step(self, pipeline: str, step: str, key: str, execution: str, properties: dict[str, Any]) -> None:
        """A successful step run, findable by its cache key."""
        with self._connect() as db:
            db.execute(
                "INSERT INTO step_cache VALUES (?, ?, ?, ?, ?, ?)",
                (pipeline, step, key, execution, json.dumps(properties, sort_keys=True), time.time()),
            )

    def cached_step(self, pipeline: str, step: str, key: str, not_before: float) -> tuple[str, dict[str, Any]] | None:
        """The newest successful run of the step with this key since `not_before`: (execution, properties)."""
        with self._connect() as db:
            row = db.execute(
                "SELECT execution, properties FROM step_cache WHERE pipeline = ? AND step = ? AND key = ? "
                "AND created >= ? ORDER BY created DESC LIMIT 1",
                (pipeline, step, key, not_before),
            ).fetchone()
        return (row["execution"], json.loads(row["properties"])) if row else None

    def step_runs(self, execution: str) -> list[StepRun]:
        with self._connect() as db:
            rows = db.execute("SELECT * FROM step_runs WHERE execution = ? ORDER BY rowid", (execution,)).fetchall()
        return [
            StepRun(
                r["step"],
                r["type"],
                r["status"],
                r["started"],
                r["ended"],
                json.loads(r["properties"] or "{}"),
                r["failure"],
                r["parent"],
            )
            for r in rows
        ]

    # training jobs
    def record_training_job(
        self,
        name: str,
        execution: str,
        step: str,
        status: str,
        hyperparameters: dict[str, str],
        metric: float | None = None,
        artifact: str | None = None,
        failure: str | None = None,
    ) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO training_jobs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    name,
                    execution,
                    step,
                    status,
                    json.dumps(hyperparameters, sort_keys=True),
                    metric,
                    artifact,
                    time.time(),
                    time.time(),
                    failure,
                ),
            )

    def training_jobs(self, execution: str) -> list[dict[str, Any]]:
        with self._connect() as db:
            return [
                dict(r)
                for r in db.execute(
                    "SELECT * FROM training_jobs WHERE execution = ? ORDER BY name", (execution,)
                ).fetchall()
            ]

    # models and registry
    def create_model(self, name: str, execution: str, image: str, model_data_url: str) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO models VALUES (?, ?, ?, ?, ?)",
                (name, execution, image, model_data_url, time.time()),
            )

    def model(self, name: str) -> dict[str, Any] | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM models WHERE name = ?", (name,)).fetchone()
        return dict(row) if row else None

    def register_model_package(
        self,
        group: str,
        status: str,
        metrics: dict[str, Any] | None,
        model_data_url: str,
        execution: str,
        customer_metadata: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        if status not in APPROVAL_STATUSES:
            message = f"model approval status {status!r}; allowed: {', '.join(APPROVAL_STATUSES)}"
            raise ValueError(message)
        with self._connect() as db:
            current = (
                db.execute("SELECT MAX(version) AS v FROM model_packages WHERE group_name = ?", (group,)).fetchone()[
                    "v"
                ]
                or 0
            )
            version = current + 1
            arn = f"arn:aws:sagemaker:local:000000000000:model-package/{group}/{version}"
            db.execute(
                "INSERT INTO model_packages (group_name, version, arn, status, metrics, model_data_url, execution, "
                "created, customer_metadata) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    group,
                    version,
                    arn,
                    status,
                    json.dumps(metrics) if metrics else None,
                    model_data_url,
                    execution,
                    time.time(),
                    json.dumps(customer_metadata, sort_keys=True) if customer_metadata else None,
                ),
            )
        return {"group": group, "version": version, "arn": arn, "status": status}

    def model_packages(self, group: str | None = None) -> list[dict[str, Any]]:
        query = (
            "SELECT * FROM model_packages"
            + (" WHERE group_name = ?" if group else "")
            + " ORDER BY group_name, version DESC"
        )
        with self._connect() as db:
            return [dict(r) for r in db.execute(query, (group,) if group else ()).fetchall()]

    def set_approval(self, group: str, version: int, status: str) -> None:
        if status not in APPROVAL_STATUSES:
            message = f"approval status {status!r}; allowed: {', '.join(APPROVAL_STATUSES)}"
            raise ValueError(message)
        with self._connect() as db:
            changed = db.execute(
                "UPDATE model_packages SET status = ? WHERE group_name = ? AND version = ?", (status, group, version)
            ).rowcount
        if not changed:
            message = f"no model package {group}/{version}; see `seclake models list`"
            raise KeyError(message)

    # endpoints
    def create_endpoint_config(self, name: str, model_name: str) -> None:
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO endpoint_configs VALUES (?, ?, ?)", (name, model_name, time.time()))

    def endpoint_config(self, name: str) -> dict[str, Any] | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM endpoint_configs WHERE name = ?", (name,)).fetchone()
        return dict(row) if row else None

    def upsert_endpoint(self, name: str, config_name: str, model_name: str, url: str, pid: int) -> None:
        with self._connect() as db:
            db.execute(
                "INSERT OR REPLACE INTO endpoints VALUES (?, ?, ?, ?, ?, 'InService', ?)",
                (name, config_name, model_name, url, pid, time.time()),
            )

    def endpoint(self, name: str) -> dict[str, Any] | None:
        with self._connect() as db:
            row = db.execute("SELECT * FROM endpoints WHERE name = ?", (name,)).fetchone()
        return dict(row) if row else None

    def endpoints(self) -> list[dict[str, Any]]:
        with self._connect() as db:
            return [dict(r) for r in db.execute("SELECT * FROM endpoints ORDER BY name").fetchall()]

    def mark_endpoint_stopped(self, name: str) -> None:
        with self._connect() as db:
            db.execute(
                "UPDATE endpoints SET status = 'Stopped', pid = NULL, updated = ? WHERE name = ?", (time.time(), name)
            )
