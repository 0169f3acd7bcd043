import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from salt_tf.tiles import rle


@settings(max_examples=200, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12)), elements=st.integers(0, 1)))
def test_round_trip(mask):
    assert np.array_equal(rle.decode(rle.encode(mask), mask.shape), mask)


@settings(max_examples=100, deadline=None)
@given(arrays(np.uint8, (101, 101), elements=st.sampled_from([0, 0, 0, 1])))
def test_round_trip_full_size_and_canonical(mask):
    text = rle.encode(mask)
    assert rle.encode(rle.decode(text)) == text


def test_column_major_one_indexed():
    mask = np.zeros((3, 3), np.uint8)
    mask[0, 0] = 1  # pixel 1
    mask[1:3, 0] = 1  # pixels 2, 3 (down the first column)
    mask[0, 1] = 1  # pixel 4: top of the second column
    mask[2, 2] = 1  # pixel 9
    assert rle.encode(mask) == "1 4 9 1"


def test_hand_cases():
    assert rle.encode(np.zeros((101, 101))) == ""
    assert rle.encode(np.ones((2, 2))) == "1 4"
    assert rle.encode(np.array([[1, 0], [0, 1]])) == "1 1 4 1"
    full = rle.decode("1 10201")
    assert full.sum() == 10201 and full.dtype == np.uint8
    # The first real train.csv row starts "44 58": column 0, rows 43..100.
    first = rle.decode("44 58")
    assert first[:43, 0].sum() == 0 and first[43:, 0].all() and first[:, 1:].sum() == 0


@pytest.mark.parametrize("empty", ["", "   ", None, float("nan")])
def test_empty(empty):
    assert rle.decode(empty).sum() == 0


@pytest.mark.parametrize(
    "text, message",
    [
        ("1 2 5", "odd number"),
        ("1 x", "non-integer"),
        ("0 3", "below 1"),
        ("5 0", "not positive"),
        ("10200 3", "past the 101x101 image"),
        ("1 5 3 2", "overlaps or precedes"),
        ("20 2 5 2", "overlaps or precedes"),
    ],
)
def test_malformed(text, message):
    with pytest.raises(rle.RLEError, match=message):
        rle.decode(text)


def test_touching_runs_are_valid():
    assert rle.decode("1 2 3 2", (2, 2)).all()
