"""Training: positives against random and shuffled negatives, binary cross-entropy, lazy Adam on touched rows."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from scripts.ipinsights.features import random_ipv4
from scripts.ipinsights.hyperparameters import Hyperparameters
from scripts.ipinsights.model import Encoded, IPInsightsNetwork, ModelSpec, encode_pairs

METRIC_NAME = "validation:discriminator_auc"
# The line a tuner parses (a MetricDefinition regex, or the local runtime's Optuna objective).
METRIC_REGEX = r"validation:discriminator_auc=([0-9.eE+-]+)"
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
RANDOM_CHUNK_BATCHES = 64
# Random-negative addresses drawn per batch; each positive takes R of them (fresh ones every batch).
RANDOM_POOL = 64


@dataclass
class EpochReport:
    """What one epoch did."""

    epoch: int
    loss: float
    positives_per_second: float
    validation_auc: float | None


def prefix_bucket_count(distinct_ips: int) -> int:
    """Prefix hash buckets: a power of two near 4x the distinct addresses, within [4096, 4194304]."""
    wanted = max(4 * distinct_ips, 4096)
    return int(min(2 ** math.ceil(math.log2(wanted)), 2**22))


def roc_auc(positive_scores: np.ndarray, negative_scores: np.ndarray) -> float:
    """Area under the ROC curve (positives should score higher), with ties counted half: the Mann-Whitney U."""
    scores = np.concatenate([positive_scores, negative_scores])
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype=np.float64)
    sorted_scores = scores[order]
    boundaries = np.flatnonzero(np.diff(sorted_scores)) + 1
    starts = np.concatenate([[0], boundaries])
    ends = np.concatenate([boundaries, [len(scores)]])
    average = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(average, ends - starts)
    n_pos, n_neg = len(positive_scores), len(negative_scores)
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    return float((ranks[:n_pos].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


class _RowwiseAdam:
    """Adam for embedding tables, on the rows a batch touched: a per-row second moment (as row-wise Adagrad in
    large-scale recommenders) and no first moment, so an update costs a few passes over the touched rows instead of a
    dozen; decoupled weight decay on those rows. Dense layers use torch's Adam."""

    def __init__(self, table: torch.Tensor, learning_rate: float, weight_decay: float) -> None:
        self.table = table
        self.second = torch.zeros(table.shape[0], dtype=table.dtype)
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay

    def step(self, rows: torch.Tensor, gradient: torch.Tensor, values: torch.Tensor, step: int) -> None:
        beta2 = ADAM_BETAS[1]
        second = self.second[rows].mul_(beta2).add_(gradient.square().mean(dim=1), alpha=1 - beta2)
        self.second[rows] = second
        scale = second.div_(1 - beta2**step).sqrt_().add_(ADAM_EPS).reciprocal_().mul_(-self.learning_rate)
        update = gradient.mul_(scale.unsqueeze(1))
        if self.weight_decay:
            update.add_(values, alpha=-self.learning_rate * self.weight_decay)
        self.table.index_add_(0, rows, update)


class Trainer:
    """Trains an IPInsightsNetwork on encoded pairs."""

    def __init__(self, network: IPInsightsNetwork, seed: int = 0) -> None:
        self.network = network
        self.hp: Hyperparameters = network.spec.hyperparameters
        self.rng = np.random.default_rng(seed)
        torch.manual_seed(seed)
        self.entity_optimizer = _RowwiseAdam(network.entity.data, self.hp.learning_rate, self.hp.weight_decay)
        self.prefix_optimizer = _RowwiseAdam(network.prefix.data, self.hp.learning_rate, self.hp.weight_decay)
        self.layer_optimizer = (
            torch.optim.Adam(network.layers.parameters(), lr=self.hp.learning_rate, weight_decay=self.hp.weight_decay)
            if len(network.layers)
            else None
        )
        self.steps = 0

    def _random_features(self, count: int) -> np.ndarray:
        from scripts.ipinsights.features import prefix_features

        spec = self.network.spec
        return prefix_features(*random_ipv4(self.rng, count), spec.prefix_buckets, spec.hash_seed)

    def train_batch(self, entity: np.ndarray, features: np.ndarray, random_features: np.ndarray) -> float:
        """One step over `len(entity)` positives; returns the mean loss."""
        hp = self.hp
        network = self.network
        size = len(entity)
        rates_r, rates_s = hp.random_negative_sampling_rate, hp.shuffled_negative_sampling_rate
        entity_index = torch.from_numpy(entity)
        all_features = torch.from_numpy(np.concatenate([features.ravel(), random_features.ravel()]))
        entity_rows, entity_inverse = torch.unique(entity_index, return_inverse=True)
        prefix_rows, prefix_inverse = torch.unique(all_features, return_inverse=True)
        entity_values = network.entity.data.index_select(0, entity_rows).requires_grad_()
        prefix_values = network.prefix.data.index_select(0, prefix_rows).requires_grad_()
        entity_vectors = F.embedding(entity_inverse, entity_values)
        width = features.shape[1]
        bags = F.embedding_bag(prefix_inverse.view(-1, width), prefix_values, mode="mean")
        ip_vectors = network.encode_prefix_vectors(bags)
        positive_ips = ip_vectors[:size]
        scores = [(entity_vectors * positive_ips).sum(dim=1)]
        for offset in range(1, rates_s + 1):
            # The batch is in random order, so the example `offset` places on gives a shuffled (entity, ip) pair.
            scores.append((entity_vectors * positive_ips.roll(offset, dims=0)).sum(dim=1))
        if rates_r:
            # Each positive meets R addresses drawn from this batch's pool of uniformly random IPv4 addresses: one
            # small matrix product scores every positive against the pool, then R columns are picked per row.
            pool_scores = entity_vectors @ ip_vectors[size:].T
            picks = torch.from_numpy(self.rng.integers(0, pool_scores.shape[1], size=(size, rates_r)))
            scores.append(pool_scores.gather(1, picks).reshape(-1))
        logits = torch.cat(scores)
        labels = torch.zeros_like(logits)
        labels[:size] = 1.0
        loss = F.binary_cross_entropy_with_logits(logits, labels)
        if self.layer_optimizer is not None:
            self.layer_optimizer.zero_grad(set_to_none=True)
        loss.backward()  # type: ignore[no-untyped-call]
        self.steps += 1
        with torch.no_grad():
            assert entity_values.grad is not None and prefix_values.grad is not None
            self.entity_optimizer.step(entity_rows, entity_values.grad, entity_values.detach(), self.steps)
            self.prefix_optimizer.step(prefix_rows, prefix_values.grad, prefix_values.detach(), self.steps)
        if self.layer_optimizer is not None:
            self.layer_optimizer.step()
        return float(loss.detach())

    def fit(
        self, train: Encoded, validation: Encoded | None = None, on_epoch: Callable[[EpochReport], None] | None = None
    ) -> list[EpochReport]:
        """All epochs; each shuffles the positives and draws fresh negatives."""
        hp = self.hp
        reports = []
        count = len(train.entity_buckets)
        batch = min(hp.mini_batch_size, count)
        for epoch in range(1, hp.epochs + 1):
            self.network.train()
            started = time.perf_counter()
            order = self.rng.permutation(count)
            losses = []
            randoms = np.zeros((0, train.ip_features.shape[1]), dtype=np.int64)
            used = 0
            for start in range(0, count, batch):
                chosen = order[start : start + batch]
                needed = min(len(chosen) * hp.random_negative_sampling_rate, RANDOM_POOL)
                if used + needed > len(randoms):
                    randoms = self._random_features(
                        max(needed, batch * hp.random_negative_sampling_rate) * RANDOM_CHUNK_BATCHES
                    )
                    used = 0
                random_block = randoms[used : used + needed]
                used += needed
                losses.append(self.train_batch(train.entity_buckets[chosen], train.ip_features[chosen], random_block))
            seconds = time.perf_counter() - started
            auc = self.validation_auc(validation) if validation is not None else None
            report = EpochReport(epoch, float(np.mean(losses)), count / seconds, auc)
            reports.append(report)
            if on_epoch is not None:
                on_epoch(report)
        return reports

    def validation_auc(self, validation: Encoded, seed: int = 12345) -> float:
        """The built-in's validation metric: positives against one random-IPv4 negative each (R=1, S=0)."""
        rng = np.random.default_rng(seed)
        spec = self.network.spec
        from scripts.ipinsights.features import prefix_features

        negatives = prefix_features(
            *random_ipv4(rng, len(validation.entity_buckets)), spec.prefix_buckets, spec.hash_seed
        )
        positive = score_encoded(self.network, validation.entity_buckets, validation.ip_features)
        negative = score_encoded(self.network, validation.entity_buckets, negatives)
        return roc_auc(positive, negative)


def score_encoded(
    network: IPInsightsNetwork, entity: np.ndarray, features: np.ndarray, chunk: int = 65_536
) -> np.ndarray:
    """dot_product for encoded pairs, in chunks, without gradients."""
    network.eval()
    results = []
    with torch.no_grad():
        for start in range(0, len(entity), chunk):
            entity_vectors = network.entity_vectors(torch.from_numpy(entity[start : start + chunk]))
            ip_vectors = network.ip_vectors(torch.from_numpy(features[start : start + chunk]))
            results.append((entity_vectors * ip_vectors).sum(dim=1).numpy())
    return np.concatenate(results) if results else np.zeros(0, dtype=np.float32)


def new_network(hp: Hyperparameters, distinct_ips: int, hash_seed: int) -> IPInsightsNetwork:
    return IPInsightsNetwork(ModelSpec(hp, prefix_bucket_count(distinct_ips), hash_seed))


__all__ = [
    "METRIC_NAME",
    "METRIC_REGEX",
    "EpochReport",
    "Trainer",
    "encode_pairs",
    "new_network",
    "roc_auc",
    "score_encoded",
]
