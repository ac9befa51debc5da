"""What the endpoint serves now, found one way: the endpoint's current config names the execution, whose
manifest.json gives the threshold, the pair rules and the detector's index. Loaded once per config: a warm container
notices a redeployed endpoint at its next batch and loads the new run's manifest and index; each account's detector
shard is read when an object of that account first arrives (scripts/monitor/shard_cache.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from scripts.detect.artifact import load_detector
from scripts.detect.detector import Detector
from scripts.handoff.artifacts import ArtifactLayout, endpoint_config_name, execution_of_endpoint_config
from scripts.handoff.detector_index import ShardIndex
from scripts.handoff.manifest import RunManifest, manifest_of_legacy_evaluation
from scripts.handoff.records import parse_json
from scripts.monitor.flagging import Knowledge
from scripts.monitor.settings import MonitorConfigError, Settings
from scripts.monitor.shard_cache import ShardedKnowledge
from scripts.monitor.store import ObjectMissingError, ObjectStore
from scripts.pairs.mapping import MAPPINGS, Algorithm

LOG = logging.getLogger("seclake.monitor")


class DetectorUnavailableError(RuntimeError):
    """The fitted detector could not be read; the message names its URI."""


@dataclass(frozen=True)
class Deployed:
    """The run an endpoint serves: its execution (the findings' model version), how to extract pairs as its training
    data was made, its threshold, and its detector (None: the model's threshold alone flags)."""

    config_name: str
    version: str
    manifest: RunManifest
    mapping: str
    algorithm: Algorithm
    threshold: float
    knowledge: ShardedKnowledge | None


class Deployment:
    """Finds and loads what is deployed. `current_config` returns the endpoint's current config name (DescribeEndpoint
    in AWS, the local state store in replay); everything else is read through `objects`."""

    def __init__(self, settings: Settings, objects: ObjectStore, current_config: Callable[[], str]) -> None:
        self.settings = settings
        self.objects = objects
        self.current_config = current_config
        self._loaded: Deployed | None = None

    def current(self) -> Deployed:
        """The deployed run, reloaded when the endpoint's config changed since the last call."""
        config = self.current_config()
        if self._loaded is None or self._loaded.config_name != config:
            self._loaded = self.load(config)
        return self._loaded

    def load(self, config_name: str) -> Deployed:
        endpoint = self.settings.endpoint
        execution = execution_of_endpoint_config(endpoint, config_name)
        if execution is None:
            expected = endpoint_config_name(endpoint, "<execution id>")
            message = (
                f"endpoint {endpoint} serves config {config_name!r}, which the pipeline did not make (its configs are "
                f"named {expected}); redeploy it from a pipeline execution"
            )
            raise MonitorConfigError(message)
        manifest, detector_guessed = self.manifest(execution)
        if manifest.mapping not in MAPPINGS:
            message = f"the deployed run {execution} names pair mapping {manifest.mapping!r}; known: {sorted(MAPPINGS)}"
            raise MonitorConfigError(message)
        threshold = self.settings.threshold_override
        if threshold is None:
            if manifest.threshold is None:
                message = f"the deployed run {execution} has no model threshold (its evaluation was degenerate)"
                raise MonitorConfigError(message)
            threshold = manifest.threshold
        return Deployed(
            config_name=config_name,
            version=execution,
            manifest=manifest,
            mapping=manifest.mapping,
            algorithm=Algorithm(manifest.algorithm),
            threshold=threshold,
            knowledge=self.knowledge(manifest, detector_guessed),
        )

    def manifest(self, execution: str) -> tuple[RunManifest, bool]:
        """runs/<execution>/evaluation/manifest.json; for a run made before manifests, the same facts from its
        evaluation.json (said in a warning). True with it when the detector's URI is a guess (such a run recorded
        none: runs/<execution>/detector/, which a run older than the FitDetector step does not have)."""
        layout = ArtifactLayout(self.settings.artifact_uri)
        uri = layout.manifest(execution)
        try:
            return RunManifest.from_json(parse_json(self.objects.get_text(uri), uri), uri), False
        except ObjectMissingError:
            pass
        evaluation_uri = layout.evaluation(execution)
        try:
            manifest, notes = manifest_of_legacy_evaluation(
                parse_json(self.objects.get_text(evaluation_uri), evaluation_uri), evaluation_uri
            )
        except ObjectMissingError:
            message = f"neither {uri} nor {evaluation_uri} exists: is ARTIFACT_URI the pipeline's artifact location?"
            raise MonitorConfigError(message) from None
        for note in notes:
            LOG.warning("%s", note)
        if manifest.detector_uri is None:  # such a run's detector lies under its own execution, if it had one
            guessed = RunManifest(manifest.threshold, layout.detector(execution), manifest.mapping, manifest.algorithm)
            return guessed, True
        return manifest, False

    def knowledge(self, manifest: RunManifest, guessed: bool = False) -> ShardedKnowledge | None:
        """The run's detector (at SECLAKE_DETECTOR_FPR when set): its index now, each account's shard when needed.
        One the run recorded must be readable: otherwise every message fails, naming it (the queue keeps them; the
        errors alarm fires), rather than flagging by a lesser rule unseen. Only a guessed one (a run from before the
        FitDetector step) may be missing: then the model's threshold alone flags, with a warning. A run fitted
        before shards names its single detector.npz, loaded whole now."""
        uri = manifest.detector_uri
        if uri is None:
            return None
        if uri.endswith(".json"):
            index = self.shard_index(uri)
            base = uri.rsplit("/", 1)[0]
            return ShardedKnowledge(lambda name: self._knowledge_of(self.shard(f"{base}/{name}", uri)), index)
        try:
            detector = self.detector(uri)
        except DetectorUnavailableError as error:
            if not guessed:
                message = f"{error}; the deployed run's manifest names it: restore it, or redeploy from another run"
                raise MonitorConfigError(message) from error
            LOG.warning("%s; flagging by the model's threshold alone", error)
            return None
        return ShardedKnowledge.whole(self._knowledge_of(detector))

    def _knowledge_of(self, detector: Detector) -> Knowledge:
        if not self.settings.detector:
            return Knowledge(detector.memory, None)
        if self.settings.false_positive_rate is not None:
            detector = detector.with_false_positive_rate(self.settings.false_positive_rate)
        return Knowledge(detector.memory, detector)

    def shard_index(self, uri: str) -> ShardIndex:
        try:
            return ShardIndex.from_json(self.objects.get_text(uri), uri)
        except Exception as error:  # missing or unreadable: every message fails, naming it
            message = (
                f"cannot read the detector index {uri}: {type(error).__name__}: {error}; the deployed run's manifest "
                "names it: restore it, or redeploy from another run"
            )
            raise MonitorConfigError(message) from error

    def shard(self, uri: str, index_uri: str) -> Detector:
        try:
            return self.detector(uri)
        except DetectorUnavailableError as error:
            message = f"{error}; the detector index {index_uri} names it: restore it, or redeploy from another run"
            raise MonitorConfigError(message) from error

    def detector(self, uri: str) -> Detector:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        path: Path | None = None
        try:
            path = self.objects.download(bucket, key)
            detector, _ = load_detector(path)
            return detector
        except Exception as error:  # missing, unreadable or not a detector: said with the URI
            message = f"cannot read the detector {uri}: {type(error).__name__}: {error}"
            raise DetectorUnavailableError(message) from error
        finally:
            if path is not None:
                path.unlink(missing_ok=True)
