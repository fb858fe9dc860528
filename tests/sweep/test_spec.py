"""Sweep files -> configs: grid and list expansion, naming rule, validation errors."""

from __future__ import annotations

import pytest

from nx.engine.errors import SweepError
from nx.engine.sweep import load_sweep
from tests.sweep.conftest import write_sweep


def test_grid_then_list_in_order_with_naming_rule(workdir):
    path = write_sweep(
        workdir,
        'name = "{round}-lr{model.params.learning_rate:.3f}-{data.target_col}"\n'
        'round = "r2"\n'
        "[grid]\n"
        "model.params.learning_rate = [0.01, 0.02]\n"
        'data.target_col = ["target", "target_aux_20"]\n'
        "[[list]]\n"
        "model.params.learning_rate = 0.5\n"
        "model.params.n_estimators = 3\n",
    )
    sweep = load_sweep(path, workdir / "exp")
    names = [c.name for c in sweep.configs]
    assert names == [
        "r2-lr0.010-target",
        "r2-lr0.010-target_aux_20",
        "r2-lr0.020-target",
        "r2-lr0.020-target_aux_20",
        "r2-lr0.500-target",
    ]
    last = sweep.configs[-1].config
    assert last.model.params["n_estimators"] == 3
    assert last.model.params["max_depth"] == 3  # from the base config
    assert last.output.results_name == "r2-lr0.500-target"
    assert last.output.output_dir == str(workdir / "exp")
    assert len({c.sha for c in sweep.configs}) == 5
    assert sweep.round == "r2" and sweep.name == "sweep"


def test_default_names_come_from_the_overrides(workdir):
    path = write_sweep(workdir, "[grid]\nmodel.params.num_leaves = [3, 5]\n")
    assert [c.name for c in load_sweep(path).configs] == ["num_leaves=3", "num_leaves=5"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('name = "x"\n[grid]\nmodel.params.num_leaves = [3, 5]\n', "both named 'x'"),
        ('name = "{model.nope}"\n[grid]\nmodel.params.num_leaves = [3]\n', "{model.nope}"),
        ("[grid]\nmodel.params.num_leaves = 3\n", "grid.model.params.num_leaves"),
        ("[grid]\ndata.nope = [1]\n", "data.nope: unknown key"),
        ("[grid]\ntraining.cv.n_splits = [0]\n", "training.cv.n_splits"),
        ("", "no variations"),
        ("colour = 1\n[grid]\nmodel.params.num_leaves = [3]\n", "unknown keys ['colour']"),
    ],
)
def test_bad_sweep_files_name_the_key(workdir, text, fragment):
    with pytest.raises(SweepError) as error:
        load_sweep(write_sweep(workdir, text))
    assert fragment in str(error.value)
    assert "sweep.toml" in str(error.value)
