"""benchmarks/real_data.py's held-out split: disjoint from training, complete, loadable."""
import numpy as np
import pytest
from scripts import load_script

from salt_tf.tiles import synthetic
from salt_tf.tiles.data import load_images, load_train


def test_holdout_split_is_disjoint_complete_and_loadable(tmp_path):
    real_data = load_script("benchmarks/real_data.py", "real_data")
    data = synthetic.generate(tmp_path / "tgs", n_train=50, n_test=2, seed=3)
    pool, holdout, held = real_data.split_holdout(data, tmp_path / "split", fraction=0.2, seed=0)
    everything = load_train(data)
    trained = load_train(pool)  # the pool passes the data layer's checks
    assert len(held) == 10 and not set(held) & set(trained.ids)
    assert sorted([*held, *trained.ids]) == sorted(everything.ids)
    ids, images = load_images(holdout / "images")
    assert sorted(ids) == sorted(held)
    index = {tile_id: i for i, tile_id in enumerate(everything.ids)}
    assert np.array_equal(images, everything.images[[index[i] for i in ids]])
    # Running it again (e.g. to resume) finds the same split in place.
    again = real_data.split_holdout(data, tmp_path / "split", fraction=0.2, seed=0)
    assert list(again[2]) == list(held)
    # Another split into the same folder would mix the two: refused.
    with pytest.raises(SystemExit, match="holds another split"):
        real_data.split_holdout(data, tmp_path / "split", fraction=0.2, seed=1)
    # The scorer reads a submission back: a perfect one scores 1.
    from salt_tf.inference.predict import write_submission

    masks = np.stack([everything.masks[index[i]] for i in ids])
    write_submission(tmp_path / "perfect.csv", ids, masks)
    score, sub_ids, truth = real_data.score_submission(tmp_path / "perfect.csv", holdout / "masks")
    assert score == 1.0 and sub_ids == list(ids) and np.array_equal(truth, masks)
