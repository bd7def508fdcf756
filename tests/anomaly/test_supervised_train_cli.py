"""``train-gbm --input``: a small labelled simulated chain through the offline stages to a model card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import run_pipeline
from pipeline.anomaly.supervised_data import read_labels, replay_chain
from pipeline.anomaly.supervised_store import load
from pipeline.config import AnalyticsSettings
from pipeline.errors import ModelError
from pipeline.simulate.chain import SimConfig
from pipeline.simulate.run import simulate
from pipeline.simulate.typologies import TYPOLOGIES


@pytest.fixture(scope="module")
def chains(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two short chains with many episodes: one to train on, one to report figures on."""
    out = []
    for seed in (21, 22):
        d = tmp_path_factory.mktemp(f"chain{seed}")
        simulate(SimConfig(blocks=80, seed=seed, n_users=2_000, rates=dict.fromkeys(TYPOLOGIES, 60.0)),
                 d, progress=False)
        out.append(d)
    return out[0], out[1]


def test_replay_labels_rows_of_labelled_addresses(chains):
    rows = replay_chain(chains[0], progress=False)
    labels = read_labels(chains[0])
    assert rows.y.sum() > 0 and (rows.y == 0).sum() > 0
    assert all((a in labels) == bool(y) for a, y in zip(rows.addresses, rows.y))
    assert len(rows.addresses) == len(rows.chains) == len(rows.X) and set(rows.chains) == {chains[0].name}


def test_train_gbm_input_and_validate_write_the_card(chains, tmp_path, capsys):
    out = tmp_path / "gbm"
    code = run_pipeline.main(["train-gbm", "--input", str(chains[0]), "--validate", str(chains[1]),
                              "--out", str(out), "--param", "max_iter=30", "--param", "min_samples_leaf=10",
                              "--seed", "3", "--no-progress"])
    assert code == 0
    card = json.loads((out / "card.json").read_text())
    v = card["validation"]
    assert v["chains"] == [chains[1].name] and v["labelled_addresses"] > 0
    assert set(v["by_typology"]) <= set(TYPOLOGIES) and v["by_typology"]
    assert card["training"]["inputs"] == [str(chains[0])] and card["seed"] == 3
    printed = capsys.readouterr().out
    assert "recall" in printed and card["version"] in printed
    model = load(out)
    assert model.threshold == card["threshold"]
    from pipeline.assemble import with_supervised

    composite = with_supervised(None, AnalyticsSettings(supervised_model=str(out)))
    assert composite.supervised.model.version == card["version"]
    assert with_supervised("primary", AnalyticsSettings()) == "primary"  # off by default


def test_configured_supervised_model_must_load(tmp_path):
    from pipeline.assemble import with_supervised

    with pytest.raises(ModelError):
        with_supervised(None, AnalyticsSettings(supervised_model=str(tmp_path / "missing")))
