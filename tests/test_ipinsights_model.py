"""Open IP Insights: hyperparameters as the built-in's, stable features, the tutorial's AUC, the training contract."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks.logins import attack_ips, simulate_logins
from scripts.ipinsights.features import AddressError, address_arrays, entity_buckets, parse_address, prefix_features
from scripts.ipinsights.hyperparameters import HyperparameterError, parse_hyperparameters
from scripts.ipinsights.model import ArtifactError, load_model
from scripts.ipinsights.train import main as train_main
from scripts.ipinsights.trainer import Trainer, encode_pairs, new_network, roc_auc, score_encoded


def test_hyperparameters_arrive_as_strings_with_builtin_defaults() -> None:
    hp = parse_hyperparameters({"num_entity_vectors": "20000", "vector_dim": "128", "sagemaker_program": "x"})
    assert (hp.epochs, hp.learning_rate, hp.mini_batch_size, hp.num_ip_encoder_layers) == (10, 0.001, 10_000, 1)
    assert (hp.random_negative_sampling_rate, hp.shuffled_negative_sampling_rate, hp.weight_decay) == (1, 1, 0.00001)
    assert hp.batch_metrics_publish_interval == 1000
    assert parse_hyperparameters(hp.as_strings()) == hp
    assert parse_hyperparameters({"num_entity_vectors": "10.0", "vector_dim": "8"}).num_entity_vectors == 10


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ({"vector_dim": "128"}, "num_entity_vectors is required; expected int in [1, 250000000]"),
        ({"num_entity_vectors": "10", "vector_dim": "2"}, "vector_dim='2' is out of range; expected int in [4, 4096]"),
        (
            {"num_entity_vectors": "10", "vector_dim": "8", "learning_rate": "fast"},
            "learning_rate='fast' is not a valid",
        ),
        (
            {
                "num_entity_vectors": "10",
                "vector_dim": "8",
                "random_negative_sampling_rate": "0",
                "shuffled_negative_sampling_rate": "0",
            },
            "= 0 (0 + 0); must be in [1, 500]",
        ),
        (
            {
                "num_entity_vectors": "10",
                "vector_dim": "8",
                "random_negative_sampling_rate": "300",
                "shuffled_negative_sampling_rate": "300",
            },
            "= 600 (300 + 300); must be in [1, 500]",
        ),
        ({"num_entity_vectors": "10", "vector_dim": "8", "batch_size": "10"}, "unknown hyperparameter(s) batch_size"),
    ],
)
def test_invalid_hyperparameters_name_the_value_and_range(raw: dict[str, str], expected: str) -> None:
    with pytest.raises(HyperparameterError) as raised:
        parse_hyperparameters(raw)
    assert expected in str(raised.value)


def test_entity_hash_is_the_same_in_another_process() -> None:
    here = entity_buckets(["012345678901/i-0abc", "user_7"], 1_000_003, 42).tolist()
    code = (
        "from scripts.ipinsights.features import entity_buckets;"
        "print(entity_buckets(['012345678901/i-0abc', 'user_7'], 1_000_003, 42).tolist())"
    )
    other = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "123", "PATH": ""},
        cwd=Path(__file__).parent.parent,
    )
    assert json.loads(other.stdout) == here


def test_prefix_features_share_networks() -> None:
    features = prefix_features(
        *address_arrays(
            ["10.1.2.3", "10.1.2.200", "10.1.9.9", "11.1.2.3", "::ffff:10.1.2.3", "2001:db8::1", "2001:db8::2"]
        ),
        1 << 20,
        5,
    )
    assert (features[0] == features[4]).all()  # IPv4-mapped IPv6 is the IPv4 address
    assert (features[0, :4] == features[1, :4]).all() and features[0, 4] != features[1, 4]  # same /24
    assert (features[0, :2] == features[2, :2]).all() and features[0, 3] != features[2, 3]  # same /16 only
    assert features[0, 0] != features[3, 0]  # another /8
    assert (features[5, :4] == features[6, :4]).all() and features[5, 4] != features[6, 4]  # same /64


@pytest.mark.parametrize("bad", ["1.2.3", "01.2.3.4", "256.0.0.1", "fe80::1%eth0", "-", ""])
def test_addresses_are_parsed_strictly(bad: str) -> None:
    with pytest.raises(AddressError):
        parse_address(bad)
    with pytest.raises(AddressError, match="row 2: "):
        address_arrays(["1.2.3.4", bad])


def test_auc_is_the_mann_whitney_statistic() -> None:
    assert roc_auc(np.array([3.0, 4.0]), np.array([1.0, 2.0])) == 1.0
    assert roc_auc(np.array([1.0, 2.0]), np.array([3.0, 4.0])) == 0.0
    assert roc_auc(np.array([1.0, 3.0]), np.array([1.0, 2.0])) == pytest.approx(0.625)


def test_tutorial_auc_on_simulated_logins() -> None:
    """The SageMaker tutorial's evaluation: seen users' later logins against logins from a random network."""
    logins = simulate_logins(users=1500, events=90_000, days=10, seed=3)
    users = np.array(logins.users, dtype=object)
    ips = np.array(logins.ips, dtype=object)
    train = logins.days < 7
    hp = parse_hyperparameters(
        {
            "num_entity_vectors": "3000",
            "vector_dim": "64",
            "epochs": "4",
            "mini_batch_size": "500",
            "learning_rate": "0.01",
            "random_negative_sampling_rate": "5",
            "shuffled_negative_sampling_rate": "1",
        }
    )
    network = new_network(hp, len(set(ips[train].tolist())), 11)
    data = encode_pairs(network.spec, users[train].tolist(), *address_arrays(ips[train].tolist()))
    Trainer(network, seed=1).fit(data)
    seen = set(users[train].tolist())
    later = ~train & np.array([u in seen for u in users])
    normal = encode_pairs(network.spec, users[later].tolist(), *address_arrays(ips[later].tolist()))
    attack = encode_pairs(
        network.spec, users[later].tolist(), *address_arrays(attack_ips(np.random.default_rng(9), int(later.sum())))
    )
    auc = roc_auc(
        score_encoded(network, normal.entity_buckets, normal.ip_features),
        score_encoded(network, attack.entity_buckets, attack.ip_features),
    )
    assert auc >= 0.98


def _write_job(root: Path, hyperparameters: dict[str, str], rows: int = 6000) -> None:
    logins = simulate_logins(users=300, events=rows, seed=5)
    for channel, keep in (("train", logins.days < 8), ("validation", logins.days >= 8)):
        folder = root / "input" / "data" / channel
        folder.mkdir(parents=True)
        lines = [f"{u},{ip}" for u, ip, k in zip(logins.users, logins.ips, keep, strict=True) if k]
        half = len(lines) // 2
        (folder / "part-0.csv").write_text("\n".join(lines[:half]) + "\n")
        (folder / "part-1.csv").write_text("\n".join(lines[half:]) + "\n")
        (folder / "_SUCCESS").write_text("")
    config = root / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))


def test_training_job_contract(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("SM_CHANNEL_TRAIN", "SM_CHANNEL_VALIDATION", "SM_MODEL_DIR", "SM_HPS", "SM_OUTPUT_DATA_DIR"):
        monkeypatch.delenv(name, raising=False)
    _write_job(
        tmp_path,
        {
            "num_entity_vectors": "600",
            "vector_dim": "16",
            "epochs": "2",
            "mini_batch_size": "200",
            "learning_rate": "0.01",
        },
    )
    assert train_main(["--root", str(tmp_path), "--threads", "1"]) == 0
    output = capsys.readouterr().out
    assert "epoch 1/2" in output and "epoch 2/2" in output
    import re

    from scripts.ipinsights.trainer import METRIC_REGEX

    values = [float(v) for v in re.findall(METRIC_REGEX, output)]
    assert len(values) == 3 and 0.5 < values[-1] <= 1.0
    metrics = json.loads((tmp_path / "output" / "data" / "metrics.json").read_text())
    assert metrics["validation:discriminator_auc"] == pytest.approx(values[-1], abs=1e-6)
    network = load_model(tmp_path / "model")
    assert network.spec.hyperparameters.vector_dim == 16
    assert not (tmp_path / "output" / "failure").exists()


def test_training_failure_is_written_for_sagemaker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_job(tmp_path, {"num_entity_vectors": "600", "vector_dim": "2"})
    monkeypatch.delenv("SM_HPS", raising=False)
    assert train_main(["--root", str(tmp_path), "--threads", "1"]) == 1
    assert "vector_dim='2' is out of range" in (tmp_path / "output" / "failure").read_text()


def test_other_format_version_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_job(tmp_path, {"num_entity_vectors": "600", "vector_dim": "8", "epochs": "1"}, rows=800)
    monkeypatch.delenv("SM_HPS", raising=False)
    assert train_main(["--root", str(tmp_path), "--threads", "1"]) == 0
    metadata_path = tmp_path / "model" / "ipinsights.json"
    metadata = json.loads(metadata_path.read_text())
    metadata["format_version"] = 99
    metadata_path.write_text(json.dumps(metadata))
    with pytest.raises(ArtifactError, match="format version 99; this release reads version 1"):
        load_model(tmp_path / "model")
    with pytest.raises(ArtifactError, match="is not an open IP Insights model"):
        load_model(tmp_path)
