"""The IP Insights network: entity embeddings, a prefix-bag IP encoder with FC layers, dot-product scores; artifacts."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from scripts.ipinsights.features import FEATURES_PER_IP, IPV4_PREFIXES, IPV6_PREFIXES, entity_buckets, prefix_features
from scripts.ipinsights.hyperparameters import Hyperparameters

FORMAT_VERSION = 1
WEIGHTS_FILE = "ipinsights.pt"
METADATA_FILE = "ipinsights.json"


class ArtifactError(ValueError):
    """A model directory is missing files or was written by an incompatible format version."""


@dataclass(frozen=True)
class ModelSpec:
    """What, besides weights, a scorer needs to reproduce training's features."""

    hyperparameters: Hyperparameters
    prefix_buckets: int
    hash_seed: int
    format_version: int = FORMAT_VERSION
    ipv4_prefixes: tuple[int, ...] = IPV4_PREFIXES
    ipv6_prefixes: tuple[int, ...] = IPV6_PREFIXES


class IPInsightsNetwork(nn.Module):
    """score(entity, ip) = entity_vector . encoder(mean of the ip's prefix vectors)."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        hp = spec.hyperparameters
        dim = hp.vector_dim
        self.spec = spec
        scale = 1.0 / np.sqrt(dim)
        self.entity = nn.Parameter(torch.randn(hp.num_entity_vectors, dim) * scale)
        self.prefix = nn.Parameter(torch.randn(spec.prefix_buckets, dim) * scale)
        self.layers = nn.ModuleList(nn.Linear(dim, dim) for _ in range(hp.num_ip_encoder_layers))

    def encode_prefix_vectors(self, prefix_mean: torch.Tensor) -> torch.Tensor:
        """The FC layers over mean prefix vectors (ReLU between layers, none after the last)."""
        hidden = prefix_mean
        for position, layer in enumerate(self.layers):
            hidden = layer(hidden)
            if position < len(self.layers) - 1:
                hidden = torch.relu(hidden)
        return hidden

    def ip_vectors(self, features: torch.Tensor) -> torch.Tensor:
        return self.encode_prefix_vectors(nn.functional.embedding_bag(features, self.prefix, mode="mean"))

    def entity_vectors(self, buckets: torch.Tensor) -> torch.Tensor:
        return self.entity[buckets]


@dataclass
class Encoded:
    """Model inputs for a list of pairs."""

    entity_buckets: np.ndarray
    ip_features: np.ndarray


def encode_pairs(
    spec: ModelSpec, entities: list[str], families: np.ndarray, high: np.ndarray, low: np.ndarray
) -> Encoded:
    """Entity buckets and IP prefix features for pairs (entities hashed once per distinct value)."""
    unique, inverse = np.unique(np.asarray(entities, dtype=object), return_inverse=True)
    buckets = entity_buckets(unique.tolist(), spec.hyperparameters.num_entity_vectors, spec.hash_seed)[inverse]
    features = prefix_features(families, high, low, spec.prefix_buckets, spec.hash_seed)
    return Encoded(buckets, features)


def save_model(network: IPInsightsNetwork, model_dir: Path, extra: dict[str, Any] | None = None) -> None:
    """Write weights and a self-describing JSON (hyperparameters, hash seed, format version) to model_dir."""
    model_dir.mkdir(parents=True, exist_ok=True)
    torch.save(network.state_dict(), model_dir / WEIGHTS_FILE)
    spec = network.spec
    metadata = {
        "format_version": spec.format_version,
        "algorithm": "ipinsights-open",
        "hyperparameters": spec.hyperparameters.as_strings(),
        "prefix_buckets": spec.prefix_buckets,
        "hash_seed": spec.hash_seed,
        "ipv4_prefixes": list(spec.ipv4_prefixes),
        "ipv6_prefixes": list(spec.ipv6_prefixes),
        "features_per_ip": FEATURES_PER_IP,
        **(extra or {}),
    }
    (model_dir / METADATA_FILE).write_text(json.dumps(metadata, indent=2, sort_keys=True) + "\n")


def load_model(model_dir: Path) -> IPInsightsNetwork:
    """Load an artifact written by save_model; another format version or missing files is a clear error."""
    from scripts.ipinsights.hyperparameters import parse_hyperparameters

    metadata_path = model_dir / METADATA_FILE
    weights_path = model_dir / WEIGHTS_FILE
    if not metadata_path.exists() or not weights_path.exists():
        message = (
            f"{model_dir} is not an open IP Insights model: expected {METADATA_FILE} and {WEIGHTS_FILE} "
            "(train one with python -m scripts.ipinsights.train)"
        )
        raise ArtifactError(message)
    metadata = json.loads(metadata_path.read_text())
    version = metadata.get("format_version")
    if version != FORMAT_VERSION:
        message = (
            f"{metadata_path} has model format version {version!r}; this release reads version "
            f"{FORMAT_VERSION}. Retrain the model, or serve it with the release that trained it."
        )
        raise ArtifactError(message)
    if tuple(metadata["ipv4_prefixes"]) != IPV4_PREFIXES or tuple(metadata["ipv6_prefixes"]) != IPV6_PREFIXES:
        message = f"{metadata_path} was trained with other prefix lengths than this release's {IPV4_PREFIXES}"
        raise ArtifactError(message)
    spec = ModelSpec(
        parse_hyperparameters(metadata["hyperparameters"]), int(metadata["prefix_buckets"]), int(metadata["hash_seed"])
    )
    network = IPInsightsNetwork(spec)
    network.load_state_dict(torch.load(weights_path, map_location="cpu", weights_only=True))
    network.eval()
    return network


def describe_spec(spec: ModelSpec) -> dict[str, Any]:
    return asdict(spec)
