"""Training entry point following the SageMaker training-container contract (also a script-mode job).

    python -m scripts.ipinsights.train [--root /opt/ml]
Reads input/config/hyperparameters.json and channels input/data/train and input/data/validation (optional), writes the
model to model/, metrics to output/data/metrics.json, and on failure the reason to output/failure. Environment
overrides: SM_CHANNEL_TRAIN, SM_CHANNEL_VALIDATION, SM_MODEL_DIR, SM_HPS (JSON), SM_OUTPUT_DATA_DIR.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from scripts.ipinsights.data import Pairs, read_channel
from scripts.ipinsights.features import AddressError, address_arrays
from scripts.ipinsights.hyperparameters import parse_hyperparameters
from scripts.ipinsights.model import Encoded, ModelSpec, encode_pairs, save_model
from scripts.ipinsights.trainer import METRIC_NAME, EpochReport, Trainer, new_network

DEFAULT_ROOT = Path("/opt/ml")
HASH_SEED = 0x5EC1A4E


@dataclass(frozen=True)
class Paths:
    """Where this job reads and writes."""

    hyperparameters: Path
    train: Path
    validation: Path
    model: Path
    output: Path
    failure: Path


def resolve_paths(root: Path, environ: dict[str, str]) -> Paths:
    return Paths(
        hyperparameters=root / "input" / "config" / "hyperparameters.json",
        train=Path(environ.get("SM_CHANNEL_TRAIN", root / "input" / "data" / "train")),
        validation=Path(environ.get("SM_CHANNEL_VALIDATION", root / "input" / "data" / "validation")),
        model=Path(environ.get("SM_MODEL_DIR", root / "model")),
        output=Path(environ.get("SM_OUTPUT_DATA_DIR", root / "output" / "data")),
        failure=root / "output" / "failure",
    )


def _encode(spec: ModelSpec, pairs: Pairs, channel: str) -> Encoded:
    try:
        arrays = address_arrays(pairs.ips)
    except AddressError as error:
        message = f"channel {channel}, {error}; clean the data (the preprocessing step drops such rows)"
        raise AddressError(message) from None
    return encode_pairs(spec, pairs.entities, *arrays)


def train(paths: Paths, environ: dict[str, str], log: object = print) -> dict[str, float]:
    """Train, save, and return the final metrics."""
    raw = json.loads(environ["SM_HPS"]) if "SM_HPS" in environ else json.loads(paths.hyperparameters.read_text())
    hp = parse_hyperparameters(raw)
    train_pairs = read_channel(paths.train)
    validation_pairs = read_channel(paths.validation) if paths.validation.is_dir() else None
    network = new_network(hp, len(set(train_pairs.ips)), HASH_SEED)
    train_data = _encode(network.spec, train_pairs, "train")
    validation_data = _encode(network.spec, validation_pairs, "validation") if validation_pairs else None
    assert callable(log)
    log(
        f"training on {len(train_pairs):,} pairs ({len(set(train_pairs.entities)):,} entities, "
        f"{len(set(train_pairs.ips)):,} addresses); validation: {len(validation_pairs) if validation_pairs else 0:,}"
    )

    def report(epoch: EpochReport) -> None:
        line = (
            f"epoch {epoch.epoch}/{hp.epochs}: loss {epoch.loss:.5f}, "
            f"{epoch.positives_per_second:,.0f} positive pairs/s"
        )
        if epoch.validation_auc is not None:
            line += f", #quality_metric: host=algo-1, epoch={epoch.epoch}, {METRIC_NAME}={epoch.validation_auc:.6f}"
        log(line)

    started = time.perf_counter()
    reports = Trainer(network, seed=0).fit(train_data, validation_data, on_epoch=report)
    metrics: dict[str, float] = {"train:loss": reports[-1].loss, "train:seconds": time.perf_counter() - started}
    if reports[-1].validation_auc is not None:
        metrics[METRIC_NAME] = reports[-1].validation_auc
        log(f"final {METRIC_NAME}={metrics[METRIC_NAME]:.6f}")
    save_model(network, paths.model, {"training": {"pairs": len(train_pairs), "metrics": metrics}})
    paths.output.mkdir(parents=True, exist_ok=True)
    (paths.output / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", type=Path, default=Path(os.environ.get("SM_ROOT", DEFAULT_ROOT)))
    parser.add_argument(
        "--threads",
        type=int,
        default=int(os.environ.get("SECLAKE_TORCH_THREADS", "0")),
        help="Torch threads (0: one per core)",
    )
    arguments = parser.parse_args(argv)
    import torch

    torch.set_num_threads(arguments.threads or os.cpu_count() or 1)
    paths = resolve_paths(arguments.root, dict(os.environ))
    try:
        train(paths, dict(os.environ), log=lambda line: print(line, flush=True))
    except Exception as error:  # the contract: the reason goes to output/failure, and the job fails
        paths.failure.parent.mkdir(parents=True, exist_ok=True)
        paths.failure.write_text(f"{type(error).__name__}: {error}\n")
        print(f"training failed: {type(error).__name__}: {error}", file=sys.stderr)
        traceback.print_exc()
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
