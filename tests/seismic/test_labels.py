"""salt_tf/seismic/labels.py: labels as interpreters keep them (a label volume as .npy or SEG-Y, top and
base of salt per trace as salt_surfaces.csv), a few lines kept, and every bad label file refused."""
import csv

import numpy as np
import pytest

from salt_tf.common.errors import SectionError
from salt_tf.seismic import interpret
from salt_tf.seismic.labels import keep_lines, labelled_lines, read_labels
from salt_tf.seismic.segment import run
from salt_tf.seismic.seiswrite import write_segy_volume
from salt_tf.seismic.seisio import open_source
from salt_tf.tiles.metrics import UNLABELLED

SHAPE = (5, 7, 30)


def ragged():
    live = np.ones(SHAPE[:2], bool)
    live[:2, :3] = False  # a dead corner
    return live


@pytest.fixture
def survey(tmp_path):
    rng = np.random.default_rng(0)
    write_segy_volume(tmp_path / "v.sgy", rng.normal(size=SHAPE).astype(np.float32), first_inline=100,
                      first_xline=20, live=ragged())
    return tmp_path / "v.sgy"


def dense_labels():
    labels = np.zeros(SHAPE, np.uint8)
    labels[:, :, 18:] = 1
    labels[1, 4, :5] = UNLABELLED  # a few samples nobody labelled
    return labels


def test_a_label_volume_reads_from_npy_and_segy_alike_absent_traces_unlabelled(survey, tmp_path):
    labels = dense_labels()
    np.save(tmp_path / "l.npy", labels)
    write_segy_volume(tmp_path / "l.sgy", labels.astype(np.float32), first_inline=100, first_xline=20, live=ragged())
    with open_source(survey) as src:
        from_npy = read_labels(tmp_path / "l.npy", src)
        from_segy = read_labels(tmp_path / "l.sgy", src)
    expected = labels.copy()
    expected[~ragged()] = UNLABELLED
    np.testing.assert_array_equal(from_npy, expected)
    np.testing.assert_array_equal(from_segy, expected)
    assert from_npy.dtype == np.uint8


def test_surfaces_written_by_segment_come_back_as_labels_and_give_the_same_surfaces(tmp_path):
    rng = np.random.default_rng(3)
    cube = rng.normal(size=(4, 60, 80)).astype(np.float32)
    cube[:, 20:45, 30:] += 4.0  # something for a stand-in model to call salt
    write_segy_volume(tmp_path / "v.sgy", cube, first_inline=10, first_xline=200)
    run(None, tmp_path / "v.sgy", tmp_path / "seg", model=lambda w: (w > 200).astype(np.float32), threshold=0.5,
        progress=False, log=lambda line: None)
    with open(tmp_path / "seg" / "salt_surfaces.csv") as f:
        rows = list(csv.DictReader(f))
    assert 0 < len(rows) < 4 * 60  # some traces with salt, some without
    with open_source(tmp_path / "v.sgy") as src:
        labels = read_labels(tmp_path / "seg" / "salt_surfaces.csv", src)
        named = {(int(r["inline"]), int(r["crossline"])): r for r in rows}
        for k, inline in enumerate(src.line_numbers):
            salt = labels[k] == 1
            top, base, _ = interpret.trace_surfaces(salt)
            for j, xline in enumerate(src.trace_numbers):
                row = named.get((int(inline), int(xline)))
                if row is None:  # not in the CSV: not labelled
                    assert (labels[k, j] == UNLABELLED).all()
                else:  # salt from top to base, not salt elsewhere on the trace
                    assert (top[j], base[j]) == (int(row["top_sample"]), int(row["base_sample"]))
                    assert not (labels[k, j] == UNLABELLED).any()
    # and they are the mask's own: within each named trace, salt between the mask's first and last salt sample
    mask = np.load(tmp_path / "seg" / "mask.npy")
    for (inline, xline), row in list(named.items())[:20]:
        trace = mask[inline - 10, xline - 200]
        assert np.flatnonzero(trace)[[0, -1]].tolist() == [int(row["top_sample"]), int(row["base_sample"])]


def test_a_few_lines_are_kept_of_a_dense_volume(survey, tmp_path):
    np.save(tmp_path / "l.npy", dense_labels())
    with open_source(survey) as src:
        labels = read_labels(tmp_path / "l.npy", src)
        kept = keep_lines(labels, src, [101, 104], "l.npy")
        assert labelled_lines(kept).tolist() == [1, 4]
        np.testing.assert_array_equal(kept[[1, 4]], labels[[1, 4]])
        assert (kept[[0, 2, 3]] == UNLABELLED).all()
        with pytest.raises(SectionError, match=r"--label-lines 101,107: 107 not among .*v.sgy's lines 100..104"):
            keep_lines(labels, src, [101, 107], "l.npy")
        with pytest.raises(SectionError, match="l.npy: line 102 holds no label"):
            keep_lines(kept, src, [102], "l.npy")


def bad_labels(case, folder, survey):
    """(label file, message) for one bad case."""
    if case == "shape":
        np.save(folder / "l.npy", np.zeros((5, 7, 29), np.uint8))
        return folder / "l.npy", "l.npy: labels of shape (5, 7, 29), expected the survey's (5, 7, 30)"
    if case == "values":
        labels = dense_labels()
        labels[2, 3, 4] = 2
        np.save(folder / "l.npy", labels)
        return folder / "l.npy", "l.npy: 1 labels are not 1 salt, 0 not salt, 255 not labelled (first 2 at line, trace, sample (2, 3, 4))"
    if case == "none labelled":
        np.save(folder / "l.npy", np.full(SHAPE, UNLABELLED, np.uint8))
        return folder / "l.npy", "l.npy: no label on any live trace"
    if case == "only on absent traces":
        labels = np.full(SHAPE, UNLABELLED, np.uint8)
        labels[0, 0] = 1  # in the dead corner
        np.save(folder / "l.npy", labels)
        return folder / "l.npy", "l.npy: no label on any live trace"
    if case == "segy of another geometry":
        write_segy_volume(folder / "l.sgy", dense_labels().astype(np.float32), first_inline=1, first_xline=20)
        return folder / "l.sgy", "l.sgy: labels on another geometry"
    rows = {"csv naming an unknown trace": "100,99,0,0,3,5,0,0,1",
            "csv top below base": "102,22,0,0,9,5,0,0,1",
            "csv base past the samples": "102,22,0,0,9,30,0,0,1",
            "csv with a trace twice": "102,22,0,0,3,5,0,0,1\n102,22,0,0,4,6,0,0,1",
            "csv not numbers": "102,22,0,0,x,5,0,0,1"}
    header = "inline,crossline,cdp_x,cdp_y,top_sample,base_sample,top_z,base_z,intervals"
    if case == "csv without its columns":
        (folder / "s.csv").write_text("il,xl,top,base\n102,22,3,5\n")
        return folder / "s.csv", "s.csv: no column inline, crossline, top_sample, base_sample"
    (folder / "s.csv").write_text(f"{header}\n{rows[case]}\n")
    message = {"csv naming an unknown trace": "s.csv line 2: inline 100, crossline 99 is not a trace of",
               "csv top below base": "s.csv line 2: top 9 and base 5 must satisfy 0 <= top <= base < 30",
               "csv base past the samples": "s.csv line 2: top 9 and base 30 must satisfy",
               "csv with a trace twice": "s.csv line 3: inline 102, crossline 22 appears twice",
               "csv not numbers": "s.csv line 2: expected whole numbers in inline, crossline, top_sample, base_sample"}
    return folder / "s.csv", message[case]


BAD = ["shape", "values", "none labelled", "only on absent traces", "segy of another geometry",
       "csv naming an unknown trace", "csv top below base", "csv base past the samples", "csv with a trace twice",
       "csv not numbers", "csv without its columns"]


@pytest.mark.parametrize("case", BAD)
def test_bad_labels_are_refused_naming_the_file_and_the_problem(case, survey, tmp_path):
    path, message = bad_labels(case, tmp_path, survey)
    with open_source(survey) as src, pytest.raises(SectionError) as err:
        read_labels(path, src)
    assert message in str(err.value)
