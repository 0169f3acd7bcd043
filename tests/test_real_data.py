"""benchmarks/real_data.py's held-out split: disjoint from training, complete, loadable; the label seams
of label_seams.py and real_sections.py; section_context.py's windows with context."""
import cv2
import numpy as np
import pandas as pd
import pytest
from scripts import load_script

from salt_tf.tiles import synthetic
from salt_tf.tiles.mosaics import TILE, UNLABELLED
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


def _refused_in_one_line(section_context, bad: list[str], tmp_path, monkeypatch, capsys) -> None:
    """section_context.py given ``bad`` flags (the next to last one the flag at fault): one ``error:``
    line naming that flag, exit status 2, and no output folder."""
    monkeypatch.setattr("sys.argv", ["section_context.py", "--real", str(tmp_path), "--out", str(tmp_path / "out"), *bad])
    with pytest.raises(SystemExit) as stop:
        section_context.main()
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.startswith(f"error: {bad[-2]}") and err.count("\n") == 1
    assert not (tmp_path / "out").exists()  # nothing written


def _section():
    """A 2 x 3 grid of tiles: (0, 0) salt on its right half, (0, 1) no salt (a seam between them),
    (0, 2) no salt (agrees with (0, 1)), (1, 0) unlabelled, (1, 1) salt everywhere (a seam with (0, 1)
    above it), (1, 2) unknown."""
    from salt_tf.tiles.mosaics import Mosaic

    label = np.zeros((2 * TILE, 3 * TILE), np.uint8)
    label[:TILE, TILE // 2:TILE] = 1
    label[TILE:, :TILE] = UNLABELLED
    label[TILE:, TILE:2 * TILE] = 1
    label[TILE:, 2 * TILE:] = UNLABELLED
    image = np.tile(np.arange(3 * TILE, dtype=np.uint8), (2 * TILE, 1))  # one ramp: continuous everywhere
    ids = np.array([["a", "b", "c"], ["d", "e", ""]], dtype=object)
    known = ids != ""
    return Mosaic("m", image, label, ids, known)


def test_label_seams_are_found_between_labelled_neighbours_only():
    label_seams = load_script("benchmarks/label_seams.py", "label_seams")
    real_sections = load_script("benchmarks/real_sections.py", "real_sections")
    section = _section()
    assert sorted(label_seams.pairs(section)) == [("above/below", (0, 1), (1, 1)), ("left/right", (0, 0), (0, 1)),
                                                  ("left/right", (0, 1), (0, 2))]
    (a, b), (i, j) = label_seams.edge_and_inside(section.tile(0, 0)[1], section.tile(0, 1)[1], "left/right")
    assert (a != b).mean() == 1.0 and (i != j).mean() == 1.0  # the salt's edge at column 50, inside the tile
    cells = [(0, 0), (0, 1), (0, 2), (1, 1)]
    groups = dict(zip(cells, real_sections.seam_groups(section, cells)))
    assert groups == {(0, 0): "at a label seam", (0, 1): "at a label seam", (0, 2): "neighbours agree",
                      (1, 1): "at a label seam"}
    section.label[TILE:, TILE:2 * TILE] = 0  # (1, 1) now agrees with (0, 1); its other neighbours are unlabelled
    assert real_sections.seam_groups(section, [(1, 1)]) == ["neighbours agree"]
    section.label[:TILE, TILE:2 * TILE] = UNLABELLED  # and now it has no labelled neighbour
    assert real_sections.seam_groups(section, [(1, 1)]) == ["no labelled neighbour"]
    # cell (1, 2) is unknown: only (0, 0) of the top row has no unknown cell around it
    assert [real_sections.windows_on_known_cells(section, r, c) for r, c in [(0, 0), (0, 1), (0, 2), (1, 0)]] == \
        [True, False, False, True]
    filled = real_sections.nearest_known(section, section.image.astype(np.float32))
    known = np.kron(section.known, np.ones((TILE, TILE), bool))
    np.testing.assert_array_equal(filled[known], section.image[known])
    assert filled[TILE, 2 * TILE + 50] == section.image[TILE - 1, 2 * TILE + 50]  # nearest: the pixel above
    assert filled[2 * TILE - 1, 2 * TILE] == section.image[2 * TILE - 1, 2 * TILE - 1]  # nearest: the one left


def test_labelled_neighbours_count_labelled_tiles_only_on_four_sides_and_all_round():
    from salt_tf.tiles.mosaics import labelled_neighbours

    section = _section()  # labelled: the top row and (1, 1); (1, 0) unlabelled, (1, 2) unknown
    sides, around = labelled_neighbours(section)
    np.testing.assert_array_equal(sides, [[1, 3, 1], [2, 1, 2]])  # any cell, labelled or not
    np.testing.assert_array_equal(around, [[2, 3, 2], [3, 3, 3]])  # a cell never counts itself
    section.label[:TILE, TILE:2 * TILE] = UNLABELLED  # (0, 1) a test tile now: its neighbours lose one each
    sides, around = labelled_neighbours(section)
    np.testing.assert_array_equal(sides, [[0, 3, 0], [2, 0, 2]])
    np.testing.assert_array_equal(around, [[1, 3, 1], [2, 2, 2]])


def test_judged_pixels_leave_out_a_band_only_beside_cells_without_labels():
    judged_pixels = load_script("benchmarks/judged_pixels.py", "judged_pixels").judged_pixels
    from salt_tf.tiles.metrics import image_scores

    from salt_tf.tiles.mosaics import labelled_cells

    section = labelled_cells(_section())  # labelled: the top row and (1, 1); (1, 0) unlabelled, (1, 2) unknown
    assert judged_pixels(section, 0, 1, 0).all()
    out = ~judged_pixels(section, 0, 1, 10)  # labelled tiles or the border on its sides; unlabelled lower diagonals
    assert out[-10:, :10].all() and out[-10:, -10:].all() and out.sum() == 2 * 10 * 10
    out = ~judged_pixels(section, 1, 1, 10)  # unlabelled left and right, labelled above, the border below
    assert out[:, :10].all() and out[:, -10:].all() and out.sum() == 2 * 10 * TILE
    out = ~judged_pixels(section, 0, 0, 25)  # only (1, 0) below is unlabelled; (1, 1) diagonal is labelled
    assert out[-25:].all() and out.sum() == 25 * TILE
    # salt a window carried 10 pixels into an empty tile from the unlabelled cell beside it is not judged
    truth, pred = np.zeros((1, TILE, TILE), np.uint8), np.zeros((1, TILE, TILE), np.uint8)
    pred[0, :, :10] = 1
    assert image_scores(truth, pred)[0] == 0.0
    assert image_scores(truth, pred, judged_pixels(section, 1, 1, 10)[None])[0] == 1.0
    assert image_scores(truth, pred, judged_pixels(section, 1, 1, 9)[None])[0] == 0.0


def test_whole_window_centres_are_told_from_traced_patches():
    whole_centres = load_script("benchmarks/judged_pixels.py", "judged_pixels").whole_centres
    mask = np.zeros((TILE, TILE), bool)
    assert not whole_centres(mask, 0) and not whole_centres(mask, 50)  # no salt: nothing to tell
    mask[:50, :50] = True  # one quarter of the shifted grid, whole: one window's centre
    assert whole_centres(mask, 50) and not whole_centres(mask, 0)  # on the grid it is a quarter of the centre
    mask[50:, :50] = True  # two quarters: two windows called their centres salt
    assert whole_centres(mask, 50)
    mask[60:, 60:70] = True  # a patch traced into a third quarter
    assert not whole_centres(mask, 50)
    mask[:] = True
    mask[:3, :] = False  # 97% of the tile: the whole centre, within the 95% allowed
    assert whole_centres(mask, 0) and not whole_centres(mask, 50)  # quarters at 94% (47 of 50 rows) are not


def test_judged_pixels_refuses_a_folder_of_neither_benchmark(tmp_path, capsys):
    judged = load_script("benchmarks/judged_pixels.py", "judged_pixels")
    with pytest.raises(SystemExit) as stop:
        judged.readings(tmp_path)
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1 and err[0].startswith("error: ") and str(tmp_path) in err[0]


def test_section_context_scores_each_group_of_tiles_apart():
    section_context = load_script("benchmarks/section_context.py", "section_context")
    section = _section()
    cells = [(0, 0), (0, 2), (1, 0), (1, 1)]  # at a seam; agrees; unlabelled, two labelled sides; at a seam
    grid = np.array([1.0, 1.0, 0.0, 0.5])
    per_tile = {"shift 0": grid, "shift 50": np.array([0.0, 1.0, 0.0, 0.5]), "stride 50, blended": grid}
    found = section_context.by_group([(section, cells)], per_tile, np.array([True, False, False, True]))
    assert (found["at a label seam"]["tiles"], found["at a label seam"]["with_salt"]) == (2, 2)
    assert found["at a label seam"]["shift 50"]["gap"] == (-0.5, 0.5)  # differences -1 and 0
    assert found["neighbours agree"]["tiles"] == 2 and found["neighbours agree"]["shift 50"]["gap"][0] == 0.0
    assert "no labelled neighbour" not in found and found["neighbours agree"]["shift 0"] == 0.5
    assert found["neighbours agree"]["stride 50, blended"]["gap"][0] == 0.0
    section.label[:, TILE:2 * TILE] = UNLABELLED  # the middle column test tiles: (1, 1) has no labelled neighbour now
    found = section_context.by_group([(section, [(1, 1), (1, 0)])], {v: a[:2] for v, a in per_tile.items()},
                                     np.array([True, False]))
    assert found["no labelled neighbour"]["tiles"] == 1 and found["no labelled neighbour"]["shift 0"] == 1.0
    assert found["neighbours agree"]["tiles"] == 1 and found["neighbours agree"]["with_salt"] == 0


def test_gaps_from_predict_py_pair_the_same_tiles_and_leave_out_the_seams_when_asked():
    section_context = load_script("benchmarks/section_context.py", "section_context")
    base = np.array([1.0, 1.0, 0.0, 0.5])
    per_tile = {"shift 0": np.array([1.0, 0.0, 0.0, 0.5]), "shift 50": base.copy(), "stride 50, blended": np.array([0.0, 1.0, 1.0, 0.5])}
    gaps = section_context.gaps_from(base, per_tile)
    assert set(gaps) == set(section_context.VARIANTS) and gaps["shift 50"] == (0.0, 0.0)
    assert gaps["shift 0"][0] == -0.25 and gaps["stride 50, blended"][0] == 0.0  # -1 and +1 cancel
    seams = np.array([True, False, False, False])
    kept = section_context.gaps_from(base, per_tile, ~seams)
    assert kept["stride 50, blended"][0] == pytest.approx(1 / 3) and kept["shift 0"][0] == pytest.approx(-1 / 3)
    real_sections = load_script("benchmarks/real_sections.py", "real_sections")
    cells = [(0, 0), (0, 2), (1, 1)]  # _section's: at a seam; agrees; at a seam
    seams = np.array([g == "at a label seam" for g in real_sections.seam_groups(_section(), cells)])
    assert seams.tolist() == [True, False, True]


def test_a_teacher_labels_every_known_cell_as_the_grid_reads_it_and_windows_anywhere_learn_that():
    section_context = load_script("benchmarks/section_context.py", "section_context")
    section = _section()
    image = section.image.astype(np.float32)

    def predict(tiles):  # a "model": salt where the tile is brighter than 150
        return np.stack([np.where(t > 150, 0.9, 0.1) for t in tiles])

    # (0, 1) has 51 salt columns (5,151 px, under the minimum area), (0, 2) 54 (uint8 202..255).
    taught, = section_context.teacher_labels([section], predict, threshold=0.5, min_area=5152)
    np.testing.assert_array_equal(taught[:, 2 * TILE:3 * TILE][:TILE], (image[:TILE, 2 * TILE:] > 150).astype(np.uint8))
    assert not taught[:TILE, :2 * TILE].any() and not taught[TILE:, :TILE].any()  # the test tile (1, 0) too
    assert (taught[TILE:, TILE:2 * TILE] == 0).all()  # the teacher's reading, not the label (salt everywhere)
    assert (taught[TILE:, 2 * TILE:] == UNLABELLED).all()  # the unknown cell

    class Fixed:  # the windows' draw: section 0, at row 101, column 150
        def __init__(self):
            self.at = iter([TILE, 150])

        def choice(self, n, p):
            return 0

        def integers(self, low, high):
            return next(self.at)

    for labels, expected in ((None, section.label), ([taught], taught)):
        windows = section_context.Windows([section], {}, [], margin=0, seed=0, window_labels=labels)
        windows.rng = Fixed()
        window, label = windows.anywhere()
        np.testing.assert_array_equal(label, expected[TILE:2 * TILE, 150:150 + TILE])
        np.testing.assert_array_equal(window, windows.padded[0][0][TILE:2 * TILE, 150:150 + TILE])


def test_windows_anywhere_can_be_drawn_with_an_empty_centre_beside_salt(tmp_path, capsys, monkeypatch):
    section_context = load_script("benchmarks/section_context.py", "section_context")
    section, margin = _section(), 20

    def drawn(empty_share):
        windows = section_context.Windows([section], {}, [], margin=margin, seed=0, empty_share=empty_share)
        return [windows.anywhere()[1] for _ in range(60)]

    centre = np.s_[margin:margin + TILE, margin:margin + TILE]
    for label in drawn(1.0):  # every one: no salt labelled in its centre, some in its margin
        assert not (label[centre] == 1).any() and (label == 1).any()
        assert np.mean(label[centre] != UNLABELLED) >= 0.25
    plain = drawn(0.0)
    assert any((label[centre] == 1).any() for label in plain)  # without it, centres with salt are drawn too
    mixed = drawn(0.5)
    assert 0 < sum((label[centre] == 1).any() for label in mixed) < 60
    for bad in (["--margin", "0", "--empty-share", "0.5"], ["--empty-share", "1.5"], ["--empty-weight", "3"],
                ["--bce-weight", "1", "--empty-weight", "0"]):
        _refused_in_one_line(section_context, bad, tmp_path, monkeypatch, capsys)


def test_windows_with_a_mute_are_filled_as_segment_py_fills_one_and_unlabelled_above_it(tmp_path, capsys, monkeypatch):
    section_context = load_script("benchmarks/section_context.py", "section_context")
    rng = np.random.default_rng(0)
    image = rng.normal(size=(121, 90)).astype(np.float32)
    label = (rng.random((121, 90)) < 0.3).astype(np.uint8)
    depths = []
    for _ in range(20):
        muted, labelled = section_context.with_mute(image, label, rng)
        empty = labelled == UNLABELLED
        depth = empty.sum(axis=0)
        assert (empty == (np.arange(121)[:, None] < depth)).all()  # a top mute: no data from the top down
        assert depth.max() <= 60 and depth.max() > 0
        for col, d in enumerate(depth):  # above the edge the trace's data mirrored across it; below it as it was
            np.testing.assert_array_equal(muted[:d, col], image[2 * d - np.arange(d), col])
        np.testing.assert_array_equal(muted[~empty], image[~empty])
        np.testing.assert_array_equal(labelled[~empty], label[~empty])
        depths.append(depth)
    slopes = [np.abs(np.diff(d)).max() for d in depths]
    assert max(slopes) >= 3 and min(slopes) <= 2  # steep edges and gentle ones

    muted = []  # every window of a batch muted at share 1, none at 0, some at a half
    real_mute = section_context.with_mute
    monkeypatch.setattr(section_context, "with_mute", lambda *a: muted.append(1) or real_mute(*a))
    for share, low, high in ((0.0, 0, 0), (1.0, 40, 40), (0.5, 5, 35)):
        muted.clear()
        windows = section_context.Windows([_section()], {}, [], margin=20, seed=0, tile_share=0.0, mute_share=share)
        x, y = windows.batch(40)
        side = section_context.input_size(20)
        assert low <= len(muted) <= high and x.shape == y.shape == (40, side, side, 1)
    _refused_in_one_line(section_context, ["--mute-share", "1.5"], tmp_path, monkeypatch, capsys)


def test_section_context_fine_tunes_in_the_precision_train_py_picks_on_this_machine(monkeypatch):
    import argparse

    import keras

    from salt_tf.common import machine

    section_context = load_script("benchmarks/section_context.py", "section_context")
    try:
        # (the machine's policy, --bfloat16, the run in mixed precision): the policy set
        cases = {(None, False, True): "float32", ("mixed_bfloat16", False, True): "mixed_bfloat16",
                 (None, True, True): "mixed_bfloat16", ("mixed_bfloat16", True, False): "float32"}
        for (native, bfloat16, mixed), expected in cases.items():
            monkeypatch.setattr(machine, "mixed_policy", lambda: native)
            assert section_context.precision(argparse.Namespace(bfloat16=bfloat16), mixed) == expected
            assert keras.mixed_precision.global_policy().name == expected
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_a_fine_tune_with_batch_norm_frozen_keeps_its_statistics_and_learns_at_the_rate_given():
    import types

    import keras

    section_context = load_script("benchmarks/section_context.py", "section_context")
    rng = np.random.default_rng(0)

    class Windows:  # batches of random windows with salt on their left half
        def batch(self, n):
            y = np.zeros((n, 8, 8, 1), np.float32)
            y[:, :, :4] = 1
            return rng.random((n, 8, 8, 1), dtype=np.float32), y

    def model():  # a batch normalisation nested in a block, as the encoder's are
        keras.utils.set_random_seed(0)
        inputs = keras.Input((8, 8, 1))
        inner = keras.Sequential([keras.layers.Conv2D(4, 3, padding="same"), keras.layers.BatchNormalization()])
        return keras.Model(inputs, keras.layers.Conv2D(1, 1)(inner(inputs)))

    config = types.SimpleNamespace(phase2_lr=1e-2, phase2_weight_decay=1e-4)
    for frozen, lr in ((True, None), (False, None), (False, 0.0)):
        net = model()
        conv, norm = net.layers[1].layers
        before = conv.kernel.numpy().copy()
        assert section_context.fine_tune(net, config, Windows(), minutes=5, steps=3, say=print,
                                         lr=lr, frozen_norm=frozen) == 3
        kept = np.array_equal(norm.moving_mean.numpy(), np.zeros(4)) and np.array_equal(norm.moving_variance.numpy(), np.ones(4))
        assert kept == frozen and (not norm.trainable) == frozen
        assert np.array_equal(conv.kernel.numpy(), before) == (lr == 0.0)  # a rate of 0 moves nothing, weight decay included


def test_the_symmetric_loss_reaches_every_false_salt_pixel_of_an_empty_window():
    import tensorflow as tf

    section_context = load_script("benchmarks/section_context.py", "section_context")
    y = np.zeros((1, 4, 4, 1), np.float32)
    y[0, 3] = UNLABELLED  # a row of unlabelled pixels: out of every loss
    logits = tf.constant(np.linspace(-2.05, 2.95, 16, dtype=np.float32).reshape(1, 4, 4, 1))  # none at a kink (-1, 0)

    def gradient(loss):
        with tf.GradientTape() as tape:
            tape.watch(logits)
            found = tf.reduce_sum(loss(y, logits))
        return tape.gradient(found, logits).numpy()[0, ..., 0]

    plain, symmetric = gradient(section_context.window_loss()), gradient(section_context.window_loss("symmetric"))
    with_bce = gradient(section_context.window_loss("lovasz", bce_weight=1.0))
    # The run's Lovasz hinge on a window labelled all empty: only its worst pixel learns.
    assert np.count_nonzero(plain) == 1 and plain[2, 3] > 0
    # The complement's hinge reaches every labelled pixel whose logit is above -1 (its margin), and only those.
    labelled_above = (logits.numpy()[0, ..., 0] > -1) & (y[0, ..., 0] != UNLABELLED)
    assert np.array_equal(symmetric > 0, labelled_above) and np.count_nonzero(symmetric) == labelled_above.sum()
    # Cross-entropy reaches every labelled pixel; none reaches the unlabelled row.
    assert np.all(with_bce[:3] > 0) and not np.any(with_bce[3]) and not np.any(symmetric[3])


def test_cross_entropy_counts_more_on_a_window_whose_centre_is_labelled_empty():
    import tensorflow as tf

    from salt_tf.model.losses import bce_per_image

    section_context = load_script("benchmarks/section_context.py", "section_context")
    y = np.zeros((3, 8, 8, 1), np.float32)
    y[0, 0, :] = 1  # salt in the margin only: an empty centre (rows and columns 2-5)
    y[1, 3, 3] = 1  # salt in the centre
    y[2, 2:6, 2:6] = UNLABELLED  # a centre with no label: nothing known to be empty
    logits = tf.constant(np.random.default_rng(0).normal(size=(3, 8, 8, 1)).astype(np.float32))
    plain = section_context.window_loss("lovasz", bce_weight=0.5)(y, logits).numpy()
    weighted = section_context.window_loss("lovasz", bce_weight=0.5, empty_weight=4.0, margin_share=0.25)(y, logits).numpy()
    bce = bce_per_image(y, logits).numpy()
    np.testing.assert_allclose(weighted - plain, [0.5 * 3 * bce[0], 0.0, 0.0], atol=1e-5)
    # with no margin (a tile alone) the centre is the whole window: window 0 has salt in it, window 2 none
    whole = section_context.window_loss("lovasz", bce_weight=0.5, empty_weight=4.0)(y, logits).numpy()
    np.testing.assert_allclose(whole - plain, [0.0, 0.0, 0.5 * 3 * bce[2]], atol=1e-5)


def test_rehearsal_tiles_are_read_as_predict_py_reads_them_and_teach_when_asked():
    import types

    import keras

    from salt_tf.tiles import pipeline

    section_context = load_script("benchmarks/section_context.py", "section_context")
    rng = np.random.default_rng(0)
    tiles = {f"t{k}": (rng.integers(0, 256, (TILE, TILE), dtype=np.uint8), (rng.random((TILE, TILE)) < 0.3).astype(np.uint8))
             for k in range(3)}
    x, y = section_context.Windows([], tiles, sorted(tiles), margin=100, seed=0).alone(12, 128)
    assert x.shape == (12, 128, 128, 1) and y.shape == (12, 128, 128, 1)
    mirrored = 0
    for image, label in zip(x, y):  # each one of the tiles, plain or mirrored, exactly as predict.py's input
        matches = [(mirror, tile_id) for tile_id, (t, _) in tiles.items() for mirror in (False, True)
                   if np.array_equal(image, pipeline.to_input((t[:, ::-1] if mirror else t)[None], 128)[0])]
        assert len(matches) == 1
        (mirror, tile_id), = matches
        mask = tiles[tile_id][1][:, ::-1] if mirror else tiles[tile_id][1]
        assert np.array_equal(label[..., 0], cv2.resize(np.ascontiguousarray(mask), (128, 128), interpolation=cv2.INTER_NEAREST))
        mirrored += mirror
    assert 0 < mirrored < 12

    class Windows:  # context windows with no label at all (no gradient); tiles alone with salt on the left
        drawn = 0

        def batch(self, n):
            return rng.random((n, 12, 12, 1), dtype=np.float32), np.full((n, 12, 12, 1), UNLABELLED, np.float32)

        def alone(self, n, size):
            Windows.drawn += 1
            y = np.zeros((n, size, size, 1), np.float32)
            y[:, :, : size // 2] = 1
            return rng.random((n, size, size, 1), dtype=np.float32), y

    config = types.SimpleNamespace(phase2_lr=1e-2, phase2_weight_decay=0.0, fit="resize", size=8)
    kernels = {}
    for rehearse in (0.0, 1.0):
        keras.utils.set_random_seed(0)
        inputs = keras.Input((None, None, 1))
        net = keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same")(inputs))
        before, Windows.drawn = net.layers[1].kernel.numpy().copy(), 0
        assert section_context.fine_tune(net, config, Windows(), minutes=5, steps=3, say=print, rehearse=rehearse) == 3
        kernels[rehearse] = net.layers[1].kernel.numpy()
        assert Windows.drawn == (3 if rehearse else 0)
    assert np.array_equal(kernels[0.0], before)  # no label, no weight decay: nothing learnt without the tiles
    assert not np.array_equal(kernels[1.0], before)


def test_a_sections_small_patches_are_dropped_before_its_tiles_are_cut():
    real_sections = load_script("benchmarks/real_sections.py", "real_sections")
    p = np.full((TILE, 2 * TILE), 0.1, np.float32)
    p[:, :3] = np.nan  # no data stays no data
    p[10:20, 95:105] = 0.9  # 100 pixels across the edge of two tiles: 50 on each
    p[60, 60:64] = 0.8  # 4 pixels
    q = real_sections.without_small_patches(p, 0.5, 60)
    assert (q[10:20, 95:105] == np.float32(0.9)).all()  # kept whole: larger than 60 though each tile holds 50
    assert (q[60, 60:64] == 0).all() and np.isnan(q[:, :3]).all()
    assert (q[30:50, 30:50] == np.float32(0.1)).all()


def test_a_few_stray_pixels_on_an_empty_tile_are_scored_with_and_without_the_runs_minimum_area():
    real_sections = load_script("benchmarks/real_sections.py", "real_sections")
    empty, salt = np.zeros((TILE, TILE), np.uint8), np.zeros((TILE, TILE), np.uint8)
    salt[:50] = 1
    stray = np.zeros((TILE, TILE), np.float32)
    stray[0, :5] = 0.9  # five pixels of salt on a tile that has none
    probs, truths = [stray, salt.astype(np.float32)], [empty, salt]
    np.testing.assert_array_equal(real_sections.tile_scores(probs, truths, 0.5), [0.0, 1.0])
    np.testing.assert_array_equal(real_sections.tile_scores(probs, truths, 0.5, min_area=6), [1.0, 1.0])
    # a real salt body smaller than the minimum area is lost as well
    np.testing.assert_array_equal(real_sections.tile_scores(probs, truths, 0.5, min_area=5051), [1.0, 0.0])
    mean, se = real_sections.paired_difference(np.array([1.0, 1.0, 0.0, 0.5]), np.array([0.0, 1.0, 0.0, 0.5]))
    assert mean == -0.25 and se == pytest.approx(0.25)  # differences -1, 0, 0, 0: sd 0.5, over sqrt(4)


def test_a_band_on_both_sides_of_each_label_seam_is_left_out_and_nothing_else():
    from salt_tf.tiles.mosaics import unlabel_seams

    section = _section()
    before = section.label.copy()
    masked = unlabel_seams(section, 5)
    out = masked.label == UNLABELLED
    expected = before == UNLABELLED
    expected[:TILE, TILE - 5:TILE + 5] = True  # (0, 0) | (0, 1): salt stops at the edge
    expected[TILE - 5:TILE + 5, TILE:2 * TILE] = True  # (0, 1) above (1, 1): no salt above, salt below
    np.testing.assert_array_equal(out, expected)  # (0, 1) | (0, 2) agree: untouched
    np.testing.assert_array_equal(masked.label[~out], before[~out])
    np.testing.assert_array_equal(section.label, before)  # the section itself is not changed
    assert unlabel_seams(section, 0) is section


def test_a_context_fine_tune_can_leave_the_label_seams_of_its_training_sections_out(tmp_path, monkeypatch, capsys):
    section_context = load_script("benchmarks/section_context.py", "section_context")
    (tmp_path / "realdata" / "mosaics").mkdir(parents=True)
    (tmp_path / "realdata" / "mosaics" / "mosaic_1.csv").write_text("a,b,c\n")
    pool = tmp_path / "pool"
    for sub in ("images", "masks"):
        (pool / sub).mkdir(parents=True)
    for name, salt in (("a", True), ("b", False), ("c", False)):  # a: salt on its right half, up to b
        mask = np.zeros((TILE, TILE), np.uint8)
        mask[:, TILE // 2:] = 255 if salt else 0
        cv2.imwrite(str(pool / "images" / f"{name}.png"), np.full((TILE, TILE), 100, np.uint8))
        cv2.imwrite(str(pool / "masks" / f"{name}.png"), mask)
    plain, = section_context.training_sections(tmp_path / "realdata", pool, [], ["c"])
    banded, = section_context.training_sections(tmp_path / "realdata", pool, [], ["c"], seams=5)
    assert plain.known.tolist() == [[True, True, False]] and (plain.label[:, 2 * TILE:] == UNLABELLED).all()
    assert (plain.label[:, :2 * TILE] != UNLABELLED).all()  # every pixel of a and b labelled
    out = banded.label == UNLABELLED
    expected = plain.label == UNLABELLED
    expected[:, TILE - 5:TILE + 5] = True  # a | b: a's salt stops at b's edge
    np.testing.assert_array_equal(out, expected)  # b | c: c is a validation cell, not a labelled tile
    _refused_in_one_line(section_context, ["--section-seams", "-1"], tmp_path, monkeypatch, capsys)


def test_a_split_by_sections_holds_out_each_section_whole(tmp_path):
    real_data = load_script("benchmarks/real_data.py", "real_data")
    data = synthetic.generate(tmp_path / "tgs", n_train=50, n_test=2, seed=3)
    ids = list(load_train(data).ids)
    (tmp_path / "realdata" / "mosaics").mkdir(parents=True)
    grids = {"mosaic_1_1": np.array(ids[:12]).reshape(3, 4), "mosaic_2_2": np.array(ids[12:20]).reshape(2, 4)}
    for name, grid in grids.items():
        (tmp_path / "realdata" / "mosaics" / f"{name}.csv").write_text("\n".join(",".join(row) for row in grid) + "\n")
    group = real_data.sections_of(ids, tmp_path / "realdata")
    assert group[ids[0]] == "mosaic_1_1" and group[ids[19]] == "mosaic_2_2" and group[ids[20]] == ids[20]
    for seed in range(4):
        pool, holdout, held = real_data.split_holdout(data, tmp_path / f"split{seed}", 0.2, seed, tmp_path / "realdata")
        whole = [set(grid.ravel()) for grid in grids.values() if set(grid.ravel()) <= set(held)]
        # sections first, whole, until a fifth of the 50 tiles: the 12-tile one, or the 8-tile one and then the other
        assert set(held) == set().union(*whole) and len(held) in (12, 20)
        assert sorted([*held, *load_train(pool).ids]) == sorted(ids)
    half = real_data.held_by_sections(ids, tmp_path / "realdata", 0.5, 0)  # every section, then 5 tiles in none
    assert set(ids[:20]) <= half and len(half) == 25
    assert set(real_data.held_by_sections(ids, tmp_path / "realdata", 0.2, 0)) == set(
        real_data.split_holdout(data, tmp_path / "split0", 0.2, 0, tmp_path / "realdata")[2])  # seeded: the same again
    with pytest.raises(SystemExit, match="holds another split"):  # the same folder split by tiles instead: refused
        real_data.split_holdout(data, tmp_path / "split0", 0.2, 0)


def test_no_salt_counts_the_traces_with_salt_and_none_in_a_mute(tmp_path):
    """benchmarks/no_salt.py's count, with a stand-in model that calls everything salt: every trace
    with data has salt, a trace of zeros (no data) has none, and the mute above each trace adds none."""
    from salt_tf.seismic.seiswrite import write_segy_volume

    no_salt = load_script("benchmarks/no_salt.py", "no_salt")
    cube = np.random.default_rng(2).normal(0, 1, (1, 60, 80)).astype(np.float32)
    cube[0, :, :20] = 0.0  # a mute
    cube[0, 11] = 0.0  # a dead trace
    write_segy_volume(tmp_path / "line.sgy", cube)
    salt_everywhere = lambda windows: np.ones(windows.shape, np.float32)  # noqa: E731
    assert no_salt.traces_with_salt(None, tmp_path / "line.sgy", "minmax", tmp_path, salt_everywhere) == (59, 60)
    surfaces = np.genfromtxt(tmp_path / "line-minmax" / "salt_surfaces.csv", delimiter=",", names=True)
    assert len(surfaces) == 59 and (surfaces["top_sample"] == 20).all() and 11 not in surfaces["crossline"] - 1


@pytest.mark.parametrize("margin", [0, 7])
@pytest.mark.parametrize("shift", [0, 50])
def test_context_windows_cover_each_tile_and_put_it_back_together(margin, shift):
    # section_context.py: windows with a margin around the (shifted) tile grid, their centres put back
    # into tiles; with a model that returns each window's centre unchanged, every tile comes back.
    section_context = load_script("benchmarks/section_context.py", "section_context")
    values = np.random.default_rng(0).normal(size=(3 * TILE, 4 * TILE)).astype(np.float32)
    cells = [(1, 1), (1, 2), (2, 3)]
    windows, origins = section_context.covering_windows(values, cells, shift, margin)
    assert len(windows) == len(cells) * (1 if shift == 0 else 4)
    assert all(w.shape == (TILE + 2 * margin, TILE + 2 * margin) for w in windows)
    centres = np.stack([w[margin:margin + TILE, margin:margin + TILE] for w in windows])
    tiles = section_context.tiles_from_centres(cells, origins, centres, shift)
    for (r, c), tile in zip(cells, tiles):
        np.testing.assert_array_equal(tile, values[r * TILE:(r + 1) * TILE, c * TILE:(c + 1) * TILE])
    # A window's margin is the section around its centre (the tile (1, 1) on the grid).
    if shift == 0:
        np.testing.assert_array_equal(windows[0], values[TILE - margin:2 * TILE + margin, TILE - margin:2 * TILE + margin])
        padded = np.pad(values, margin, mode="reflect")
        np.testing.assert_array_equal(section_context.cell_window(padded, margin, 1, 1, margin), windows[0])


@pytest.mark.parametrize("margin", [0, 7])
def test_segment_style_windows_blend_back_into_each_tile(margin):
    # section_context.py's "stride 50, blended": segment.py's windows (centres every 50 px from -25,
    # so none on the tile grid), each with its margin, blended with segment.py's weights; with a model
    # that returns each window's centre unchanged, every tile comes back.
    section_context = load_script("benchmarks/section_context.py", "section_context")
    values = np.random.default_rng(1).normal(size=(3 * TILE, 4 * TILE)).astype(np.float32)
    cells = [(0, 0), (1, 2), (2, 3)]
    windows, origins = section_context.stride_windows(values, cells, margin)
    assert all(w.shape == (TILE + 2 * margin, TILE + 2 * margin) for w in windows)
    assert {y for y, _ in origins} == {-25, 25, 75, 125, 175, 225, 275} and {x for _, x in origins} >= {-25, 375}
    assert not any(y % TILE == 0 and x % TILE == 0 for y, x in origins)
    # each window's margin is the section around its centre
    y, x = origins[len(origins) // 2]
    padded = np.pad(values, 2 * TILE + margin, mode="reflect")
    np.testing.assert_array_equal(windows[len(origins) // 2], padded[y + 2 * TILE : y + 3 * TILE + 2 * margin,
                                                                     x + 2 * TILE : x + 3 * TILE + 2 * margin])
    centres = np.stack([w[margin:margin + TILE, margin:margin + TILE] for w in windows])
    tiles = section_context.blended_tiles(cells, origins, centres, values.shape)
    for (r, c), tile in zip(cells, tiles):
        np.testing.assert_allclose(tile, values[r * TILE:(r + 1) * TILE, c * TILE:(c + 1) * TILE], rtol=1e-5, atol=1e-5)
    # every pixel of a cell lies inside some window's centre
    covered = np.zeros(values.shape, bool)
    for y, x in origins:
        covered[max(y, 0):y + TILE, max(x, 0):x + TILE] = True
    assert all(covered[r * TILE:(r + 1) * TILE, c * TILE:(c + 1) * TILE].all() for r, c in cells)


def test_scored_cells_keep_the_cells_inside_every_shifted_section():
    real_sections = load_script("benchmarks/real_sections.py", "real_sections")
    a, b = _section(), _section()
    found = [(a, [(0, 0), (1, 1), (1, 2)]), (b, [(0, 2)])]
    assert real_sections.scored_cells(found, 50) == [(a, [(1, 1), (1, 2)])]  # row or column 0 is cut; b is left empty
    assert real_sections.scored_cells(found, 0) == found
    assert real_sections.scored_cells(found, TILE + 1) == []  # no cell lies 102 px inside this 2-row section


@pytest.mark.parametrize("shift", [0, 50])
def test_whole_section_maps_and_where_false_salt_runs_on(shift):
    # false_salt_origin.py: a whole section read by windows on the grid or 50 px off it comes back
    # whole with a model that returns each window's centre; where a mask steps is counted per line.
    origin = load_script("benchmarks/false_salt_origin.py", "false_salt_origin")
    values = np.random.default_rng(2).normal(size=(2 * TILE, 3 * TILE)).astype(np.float32)
    identity = lambda windows: np.stack([w[7:7 + TILE, 7:7 + TILE] for w in windows])  # noqa: E731
    np.testing.assert_array_equal(origin.section_map(identity, values, 7, shift), values)
    section = _section()  # (0, 0) salt on its right half, (0, 1) empty beside it, (1, 1) salt everywhere
    everywhere = np.ones((2, 3), bool)
    assert origin.step_counts(section.label, everywhere, [50]) == (TILE, 4 * TILE)  # (0, 0)'s salt edge, in 4 pairs
    labelled = np.array([[True, True, True], [False, True, False]])
    assert origin.step_counts(section.label, labelled, [TILE]) == (TILE, 2 * TILE)  # a seam, then an agreement
    # Off the grid, (0, 1) gets salt that runs on from (0, 0), which the grid calls salt: it is traced
    # there; (1, 1) is salt on both, and (0, 2) empty on both, so they are not reached.
    grid = section.label == 1
    off = grid.copy()
    off[:TILE, TILE:TILE + 30] = True
    found = origin.origin_of(section, 0, 1, grid, off)
    assert found == {"off_grid_salt": 30 * TILE, "grid_salt": 0, "continues_into": ["salt tile"]}
    off[TILE:, TILE:2 * TILE] = False  # the patch no longer reaches (1, 1); (0, 0) still
    assert origin.origin_of(section, 0, 1, grid, off)["continues_into"] == ["salt tile"]
    off[:TILE, TILE // 2:TILE] = False  # cut off from (0, 0) too
    assert origin.origin_of(section, 0, 1, grid, off)["continues_into"] == []
    assert [origin.neighbour_kind(section, r, c) for r, c in [(0, 1), (1, 0), (1, 1), (1, 2)]] == \
        ["empty tile", "test tile", "salt tile", "unknown cell"]


def test_rescore_refuses_a_folder_without_a_fine_tune_or_from_another_run(tmp_path, capsys):
    import argparse
    import json

    section_context = load_script("benchmarks/section_context.py", "section_context")
    args = argparse.Namespace(rescore=tmp_path / "ft", real=tmp_path / "REAL")
    args.rescore.mkdir()
    with pytest.raises(SystemExit) as stop:
        section_context.earlier_fine_tune(args)
    assert stop.value.code == 2 and capsys.readouterr().err == f"error: {args.rescore}: no figures.json; " \
        "--rescore takes an earlier section_context.py --out\n"
    (args.rescore / "figures.json").write_text(json.dumps({"command": {"real": str(tmp_path / "OTHER"), "margin": 50}}))
    (args.rescore / "model.keras").write_bytes(b"")
    with pytest.raises(SystemExit) as stop:
        section_context.earlier_fine_tune(args)
    assert stop.value.code == 2 and "fine-tuned from" in capsys.readouterr().err
    (args.rescore / "figures.json").write_text(json.dumps({"command": {"real": str(tmp_path / "REAL"), "margin": 50}}))
    assert section_context.earlier_fine_tune(args)["command"]["margin"] == 50
    assert sorted(p.name for p in args.rescore.iterdir()) == ["figures.json", "model.keras"]  # nothing written


def test_the_gap_splits_into_the_agreed_tiles_and_the_rest(tmp_path, capsys):
    agreed_false_salt = load_script("benchmarks/agreed_false_salt.py", "agreed_false_salt")
    base, other = np.array([1.0, 1.0, 0.5, 0.8]), np.array([0.0, 1.0, 0.3, 0.8])
    split = agreed_false_salt.split_gap(base, other, np.array([True, False, False, False]))
    assert split["gap"] == pytest.approx(-0.3) and split["on_agreed"] == pytest.approx(-0.25)
    assert split["on_agreed"] + split["on_rest"] == pytest.approx(split["gap"])
    assert split["rest_alone"][0] == pytest.approx(-0.2 / 3)  # the rest's own mean over its three tiles
    model = tmp_path / "m50"  # a context fine-tune: its windows are not one tile
    model.mkdir()
    (model / "model.keras").write_bytes(b"")
    (model / "figures.json").write_text('{"command": {"margin": 50}}')
    for bad, says in ((["--from", str(tmp_path)], "no figures.json"), (["--from", str(tmp_path), "--image", "x.jpg"], "PNG"),
                      (["--from", str(tmp_path), "--shifts", "5"], "--shifts and --model"),
                      (["--from", str(model), "--shifts", "5", "--model", str(model)], "--margin 50")):
        with pytest.raises(SystemExit) as stop:
            agreed_false_salt.main(["--real", str(tmp_path), *bad, "--out", str(tmp_path / "out.json")])
        err = capsys.readouterr().err
        assert stop.value.code == 2 and err.startswith("error:") and says in err and err.count("\n") == 1
        assert not (tmp_path / "out.json").exists()


def test_the_starts_own_submission_gives_each_held_out_tile_its_score(tmp_path):
    from salt_tf.tiles import rle
    from salt_tf.tiles.metrics import image_scores

    section_context = load_script("benchmarks/section_context.py", "section_context")
    truth = np.zeros((3, TILE, TILE), np.uint8)
    truth[0, :50] = 1  # a salt tile, read exactly; an empty tile read empty; an empty tile given salt
    given = truth.copy()
    given[2, :5, :5] = 1
    pd.DataFrame({"id": ["b", "a", "c"], "rle_mask": [rle.encode(given[1]), rle.encode(given[0]), rle.encode(given[2])]}).to_csv(
        tmp_path / "holdout_submission.csv", index=False)
    found = section_context.start_scores(tmp_path / "holdout_submission.csv", ["a", "b", "c"], truth)
    np.testing.assert_array_equal(found, [1.0, 1.0, 0.0])
    np.testing.assert_array_equal(found, image_scores(truth, given))
    assert section_context.start_scores(tmp_path / "none.csv", ["a"], truth[:1]) is None  # no submission, no pairing
    with pytest.raises(ValueError, match="holdout_submission.csv: no row for 1 held-out tiles"):
        section_context.start_scores(tmp_path / "holdout_submission.csv", ["a", "z"], truth[:2])


def test_an_agreed_tiles_neighbours_count_labelled_tiles_and_their_salt():
    agreed_false_salt = load_script("benchmarks/agreed_false_salt.py", "agreed_false_salt")
    section = _section()  # a: salt, b: empty, c: empty / d: unlabelled, e: salt, (1, 2): unknown
    # a, c, e; not d or the unknown; a's salt (its right half) and e's (all) run the whole edge they share with b
    assert agreed_false_salt.neighbours(section, 0, 1) == {"labelled": 3, "with_salt": 2, "edge_salt": TILE}
    assert agreed_false_salt.neighbours(section, 1, 2) == {"labelled": 3, "with_salt": 1, "edge_salt": TILE}  # b, c, e: e's
    assert agreed_false_salt.neighbours(section, 1, 0) == {"labelled": 3, "with_salt": 2, "edge_salt": TILE}  # a, b, e: e's
    assert agreed_false_salt.neighbours(section, 0, 2)["edge_salt"] == 0  # b beside it, the unknown cell below: no salt
    section.label[TILE:, TILE:2 * TILE] = 0  # e empty: a's bottom row is salt on its right half only
    assert agreed_false_salt.neighbours(section, 1, 0)["edge_salt"] == TILE - TILE // 2
    assert agreed_false_salt.neighbours(section, 0, 1)["edge_salt"] == TILE  # a's right column still
    section.label[:TILE, TILE - 1] = 0  # a's salt stops a pixel short of b
    assert agreed_false_salt.neighbours(section, 0, 1)["edge_salt"] == 0


def test_a_fine_tune_records_its_folders_absolute(tmp_path, monkeypatch):
    import argparse
    import json
    from pathlib import Path

    section_context = load_script("benchmarks/section_context.py", "section_context")
    monkeypatch.chdir(tmp_path)
    recorded = section_context.command_of(argparse.Namespace(real=Path("STRONG"), margin=50, rescore=None))
    assert recorded == {"real": str(tmp_path.resolve() / "STRONG"), "margin": 50, "rescore": None}
    args = argparse.Namespace(rescore=tmp_path / "DIR", real=tmp_path / "STRONG")
    (tmp_path / "DIR").mkdir()
    (tmp_path / "DIR" / "model.keras").write_bytes(b"")
    (tmp_path / "DIR" / "figures.json").write_text(json.dumps({"command": recorded}))
    monkeypatch.chdir(tmp_path / "DIR")  # rescored from another folder: still the same run
    assert section_context.earlier_fine_tune(args)["command"]["real"] == recorded["real"]


def test_the_benchmarks_section_reading_with_context_is_segment_pys(tmp_path):
    """section_context.py's "stride 50, blended" figures are what segment.py gives a run that reads with
    context: the same windows around the same centres, the same weights, for a model that reads its margin."""
    from salt_tf.seismic import sections

    section_context = load_script("benchmarks/section_context.py", "section_context")
    values = np.random.default_rng(3).normal(size=(3 * TILE, 4 * TILE)).astype(np.float32)
    cells = [(r, c) for r in range(3) for c in range(4)]
    margin = 30

    def reads_its_margin(windows):  # each pixel: its value plus its window's mean, margin included
        w = np.asarray(windows, np.float32)
        return w + w.mean(axis=(1, 2), keepdims=True)

    windows, origins = section_context.stride_windows(values, cells, margin)
    centres = reads_its_margin(np.stack(windows))[:, margin:margin + TILE, margin:margin + TILE]
    benchmark = section_context.blended_tiles(cells, origins, centres, values.shape)
    product = sections.segment_section(values, reads_its_margin, 50, margin=margin)
    alone = sections.segment_section(values, reads_its_margin, 50)
    for (r, c), tile in zip(cells, benchmark):
        cut = np.s_[r * TILE:(r + 1) * TILE, c * TILE:(c + 1) * TILE]
        np.testing.assert_allclose(product[cut], tile, rtol=1e-5, atol=1e-5)
    assert np.abs(alone - product).max() > 0.01  # the margin is read


def test_a_fine_tune_is_exported_as_a_run_that_predict_and_segment_load_with_its_context(tmp_path):
    import argparse
    import json

    import keras

    from salt_tf.inference.predict import load_ensemble, postprocessing
    from salt_tf.run.config import Config

    section_context = load_script("benchmarks/section_context.py", "section_context")
    start = tmp_path / "REAL" / "run"
    start.mkdir(parents=True)
    Config(size=128, folds=5, encoder_weights=None).save(start / "config.json")
    (start / "folds.csv").write_text("id,fold\na,0\n")
    inputs = keras.Input((None, None, 1))
    keras.Model(inputs, keras.layers.Conv2D(1, 3, padding="same")(inputs)).save(tmp_path / "model.keras")
    args = argparse.Namespace(real=tmp_path / "REAL", out=tmp_path / "out", margin=50)
    made = section_context.export_run(args, tmp_path / "model.keras", {"threshold": 0.5, "min_area": 120},
                                      {"threshold": 0.45, "min_area": 100, "score": 0.79}, {"seed": 3})
    assert made == tmp_path / "out" / "run"
    assert (made / "fold0" / "model.keras").read_bytes() == (tmp_path / "model.keras").read_bytes()
    assert (made / "folds.csv").read_text() == "id,fold\na,0\n"
    ensemble = load_ensemble(made)
    assert (ensemble.size, ensemble.input_size(201)) == (128, section_context.input_size(50)) == (128, 256)
    assert ensemble.context == {"margin": 50, "size": 256, "threshold": 0.5, "min_area": 120}
    assert postprocessing(made, None) == (0.45, 100)  # predict.py: the tiles alone
    assert json.loads((made / "report.json").read_text())["command"] == {"seed": 3}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["run"]  # no temporary left
