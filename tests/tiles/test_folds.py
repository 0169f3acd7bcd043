import numpy as np
import pandas as pd
import pytest

from salt_tf.tiles.folds import assign_folds, read_folds, write_folds


@pytest.fixture
def table():
    rng = np.random.default_rng(1)
    n = 1000
    coverage = np.where(rng.random(n) < 0.4, 0.0, rng.random(n))
    return pd.DataFrame({"id": [f"{i:010x}" for i in range(n)], "z": rng.gamma(5, 100, n), "coverage": coverage})


@pytest.mark.parametrize("by", ["depth", "coverage"])
def test_partition(table, by):
    folds = assign_folds(table, n_folds=5, seed=0, by=by)
    assert list(folds["id"]) == list(table["id"])  # every id exactly once
    assert set(folds["fold"]) == set(range(5))
    assert folds["fold"].value_counts().max() - folds["fold"].value_counts().min() <= 5


def test_deterministic_for_a_seed(table):
    a = assign_folds(table, seed=3)
    b = assign_folds(table, seed=3)
    c = assign_folds(table, seed=4)
    pd.testing.assert_frame_equal(a, b)
    assert (a["fold"] != c["fold"]).any()


def test_depth_stratification(table):
    folds = assign_folds(table, n_folds=5, seed=0, by="depth")
    z = table["z"].to_numpy()
    decile = np.searchsorted(np.quantile(z, np.linspace(0.1, 0.9, 9)), z)
    for k in range(5):
        in_fold = folds["fold"].to_numpy() == k
        # Each fold holds a fifth of every depth decile (100 tiles each here), to within one tile.
        counts = np.bincount(decile[in_fold], minlength=10)
        assert np.abs(counts - 20).max() <= 1, counts
    # The distributions match: fold quantiles within a tenth of a standard deviation of the whole.
    levels = [0.1, 0.25, 0.5, 0.75, 0.9]
    for k in range(5):
        gap = np.abs(np.quantile(z[folds["fold"] == k], levels) - np.quantile(z, levels)).max()
        assert gap < 0.1 * z.std()


def test_coverage_stratification_balances_empty_tiles(table):
    folds = assign_folds(table, n_folds=5, seed=0, by="coverage")
    empty = (table["coverage"] == 0).to_numpy()
    shares = [empty[folds["fold"] == k].mean() for k in range(5)]
    assert max(shares) - min(shares) < 0.01


def test_round_trip_and_validation(table, tmp_path):
    folds = assign_folds(table, n_folds=3)
    path = tmp_path / "folds.csv"
    write_folds(folds, path)
    back = read_folds(path, ids=table["id"])
    pd.testing.assert_frame_equal(back, folds)
    with pytest.raises(ValueError, match="1 ids without a fold"):
        read_folds(path, ids=list(table["id"]) + ["ffffffffff"])
    path.write_text("id,fold\na,0\na,1\n")
    with pytest.raises(ValueError, match="id a appears more than once"):
        read_folds(path)


def test_bad_arguments(table):
    with pytest.raises(ValueError, match="stratify by one of"):
        assign_folds(table, by="colour")
    with pytest.raises(ValueError, match="n_folds"):
        assign_folds(table.head(3), n_folds=5)
