"""salt_tf/common/figures.py: the section figure and predict.py's tile grid draw the outlines they are given;
segment.py's QC figures (uncertainty panel, top-of-salt map, domain check, disagreement) are written."""
import cv2
import numpy as np

from salt_tf.common import figures


def colour_pixels(path):
    bgr = cv2.imread(str(path)).astype(int)
    b, g, r = bgr[..., 0], bgr[..., 1], bgr[..., 2]
    return int(((r > 200) & (g < 80) & (b < 80)).sum()), int(((g > 200) & (r < 80) & (b < 80)).sum())


def test_section_figure_draws_predicted_and_true_outlines(tmp_path):
    grey = np.full((150, 300), 128, np.uint8)
    mask = np.zeros_like(grey)
    mask[80:, 100:200] = 1
    figures.section_figure(tmp_path / "a.png", grey, mask, title="test")
    red, green = colour_pixels(tmp_path / "a.png")
    assert red > 100 and green == 0
    figures.section_figure(tmp_path / "b.png", grey, mask, truth=np.roll(mask, 30, axis=1))
    assert min(colour_pixels(tmp_path / "b.png")) > 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "b.png"]  # no temporaries


def test_tile_grid_has_one_panel_per_tile_with_outlines(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(60, 200, (5, 101, 101), dtype=np.uint8)
    masks = np.zeros((5, 101, 101), np.uint8)
    masks[:, 50:, :60] = 1
    figures.tile_grid(tmp_path / "g.png", [f"id{i}" for i in range(5)], images, masks, truth=masks[:, ::-1],
                      scores=np.linspace(0, 1, 5), columns=4)
    assert cv2.imread(str(tmp_path / "g.png")).shape == (640, 1200, 3)  # 2 rows of 4 panels, 3.2 x 3.0 in at 100 dpi
    assert min(colour_pixels(tmp_path / "g.png")) > 200


def test_predict_overlays_score_each_tile_against_its_truth(tmp_path, monkeypatch):
    from salt_tf.inference import predict

    seen = {}
    monkeypatch.setattr(figures, "tile_grid", lambda path, ids, images, masks, truth, scores: seen.update(scores=scores))
    truth = np.zeros((2, 101, 101), np.uint8)
    truth[:, :50] = 1
    masks = truth.copy()
    masks[1] = 0  # tile 1 misses its salt entirely
    predict.write_overlays(tmp_path / "grid.png", ["a", "b"], np.zeros((2, 101, 101), np.uint8), masks, truth)
    assert list(seen["scores"]) == [1.0, 0.0]


def test_learning_curves_draw_each_fold_and_skip_missing_histories(tmp_path):
    import cv2
    import pandas as pd

    history = pd.DataFrame({"phase": [1, 1, 2], "epoch": [1, 2, 1], "size": [64, 128, 128],
                            "val_score": [0.2, 0.5, 0.6], "score": [0.3, 0.5, 0.7]})
    figures.learning_curves(tmp_path / "curve.png", {0: history, 1: None})
    picture = cv2.imread(str(tmp_path / "curve.png"))
    assert picture is not None and picture.shape[:2] == (450, 800) and picture.std() > 10
    assert [p.name for p in tmp_path.iterdir()] == ["curve.png"]  # no temporary left behind


def picture_of(path):
    picture = cv2.imread(str(path))
    assert picture is not None and picture.std() > 10  # a PNG with something drawn
    return picture


def test_section_figure_with_uncertainty_adds_a_panel_below(tmp_path):
    grey = np.full((150, 300), 128, np.uint8)
    mask = np.zeros_like(grey)
    mask[80:, 100:200] = 1
    uncertainty = np.zeros(grey.shape, np.float32)
    uncertainty[75:85, 100:200] = 0.4  # along the top of salt
    figures.section_figure(tmp_path / "plain.png", grey, mask)
    figures.section_figure(tmp_path / "both.png", grey, mask, uncertainty=uncertainty)
    plain, both = picture_of(tmp_path / "plain.png"), picture_of(tmp_path / "both.png")
    assert both.shape[0] > 1.6 * plain.shape[0] and colour_pixels(tmp_path / "both.png")[0] > 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["both.png", "plain.png"]


def test_top_of_salt_map_for_a_volume_and_a_line(tmp_path):
    top = np.linspace(800, 1600, 12 * 40).reshape(12, 40)
    top[:3, :5] = np.nan  # no data: blank
    figures.top_of_salt_map(tmp_path / "map.png", top, np.arange(100, 112), np.arange(1, 41), "ms", title="test")
    assert picture_of(tmp_path / "map.png").shape[:2][1] >= 300
    figures.top_of_salt_map(tmp_path / "line.png", top[5], [7], np.arange(1, 41), "m", base=top[5] + 300)
    assert picture_of(tmp_path / "line.png").shape[0] == 450


def test_domain_and_disagreement_figures(tmp_path):
    from salt_tf.seismic.qc import DomainCheck

    check = DomainCheck()
    rng = np.random.default_rng(0)
    for k in range(6):
        check.add_line(np.clip(rng.normal(120, 300, (50, 40)), 0, 255).astype(np.uint8), line_number=10 + k)
        check.record(10 + k, 0.2 + 0.05 * k, None if k == 0 else 0.02 * k)
    summary = check.summary()
    assert summary["warning"]
    figures.domain_figure(tmp_path / "domain.png", summary)
    assert picture_of(tmp_path / "domain.png").shape[:2] == (450, 1500)
    figures.disagreement_figure(tmp_path / "disagreement.png", np.arange(100, 120), np.linspace(0, 0.1, 20))
    assert picture_of(tmp_path / "disagreement.png").shape[:2] == (400, 800)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["disagreement.png", "domain.png"]
