"""Training throughput: the open trainer against a plain reference model, same data, same process.

    python -m benchmarks.train [--threads 1 2] [--repeat 3]
Setting of the issue: R=5, S=1, vector_dim 128, mini_batch_size 1000, tutorial-like logins. The reference is the
obvious PyTorch model: nn.Embedding entities . nn.EmbeddingBag of hashed prefixes, SparseAdam, fresh random IPv4
negatives for every positive, shuffled negatives by permutation.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmarks.logins import simulate_logins
from scripts.ipinsights.features import address_arrays, prefix_features, random_ipv4
from scripts.ipinsights.hyperparameters import Hyperparameters, parse_hyperparameters
from scripts.ipinsights.model import Encoded, encode_pairs
from scripts.ipinsights.trainer import Trainer, new_network

SETTING = {
    "vector_dim": "128",
    "random_negative_sampling_rate": "5",
    "shuffled_negative_sampling_rate": "1",
    "mini_batch_size": "1000",
    "epochs": "1",
    "learning_rate": "0.01",
}


class Reference(nn.Module):
    """entity . sum of hashed prefix embeddings, sparse gradients."""

    def __init__(self, entities: int, buckets: int, dim: int) -> None:
        super().__init__()
        self.entity = nn.Embedding(entities, dim, sparse=True)
        self.prefix = nn.EmbeddingBag(buckets, dim, mode="sum", sparse=True)

    def forward(self, entity: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        scores: torch.Tensor = (self.entity(entity) * self.prefix(features)).sum(dim=1)
        return scores


def reference_epoch(
    model: Reference,
    optimizer: torch.optim.Optimizer,
    data: Encoded,
    hp: Hyperparameters,
    buckets: int,
    rng: np.random.Generator,
) -> float:
    count = len(data.entity_buckets)
    order = rng.permutation(count)
    started = time.perf_counter()
    for start in range(0, count, hp.mini_batch_size):
        chosen = order[start : start + hp.mini_batch_size]
        size = len(chosen)
        entity = torch.from_numpy(data.entity_buckets[chosen])
        features = torch.from_numpy(data.ip_features[chosen])
        random = torch.from_numpy(
            prefix_features(*random_ipv4(rng, size * hp.random_negative_sampling_rate), buckets, 7)
        )
        shuffled = features[torch.randperm(size)]
        logits = torch.cat(
            [
                model(entity, features),
                model(entity, shuffled),
                model(entity.repeat_interleave(hp.random_negative_sampling_rate), random),
            ]
        )
        labels = torch.zeros_like(logits)
        labels[:size] = 1
        optimizer.zero_grad()
        F.binary_cross_entropy_with_logits(logits, labels).backward()  # type: ignore[no-untyped-call]
        optimizer.step()
    return count / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--events", type=int, default=300_000)
    arguments = parser.parse_args(argv)
    logins = simulate_logins(users=5000, events=arguments.events, seed=1)
    hp = parse_hyperparameters({"num_entity_vectors": "10000", **SETTING})
    for threads in arguments.threads:
        torch.set_num_threads(threads)
        network = new_network(hp, len(set(logins.ips)), 7)
        data = encode_pairs(network.spec, logins.users, *address_arrays(logins.ips))
        trainer = Trainer(network, seed=0)
        trainer.fit(data)  # warm-up epoch
        open_rates = [trainer.fit(data)[0].positives_per_second for _ in range(arguments.repeat)]
        buckets = network.spec.prefix_buckets
        reference = Reference(hp.num_entity_vectors, buckets, hp.vector_dim)
        optimizer = torch.optim.SparseAdam(list(reference.parameters()), lr=hp.learning_rate)
        rng = np.random.default_rng(0)
        reference_epoch(reference, optimizer, data, hp, buckets, rng)
        reference_rates = [
            reference_epoch(reference, optimizer, data, hp, buckets, rng) for _ in range(arguments.repeat)
        ]
        open_median, reference_median = statistics.median(open_rates), statistics.median(reference_rates)
        print(
            f"threads={threads}: open trainer median {open_median:,.0f} positive pairs/s "
            f"(epochs: {', '.join(f'{r:,.0f}' for r in open_rates)}); reference median {reference_median:,.0f} "
            f"(epochs: {', '.join(f'{r:,.0f}' for r in reference_rates)}); ratio {open_median / reference_median:.1f}x",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
