"""Run-length encoding in the TGS competition's format.

The competition numbers pixels column-major (top to bottom, then left to right) starting at 1, and
writes a mask as space-separated ``start length`` pairs; an empty mask is the empty string.
Pure NumPy, no TensorFlow.
"""
from __future__ import annotations

import numpy as np


class RLEError(ValueError):
    """A run-length string that does not describe a mask of the given shape."""


def encode(mask: np.ndarray) -> str:
    """Encode a 2-D mask (non-zero = salt) as the competition's run-length string."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"expected a 2-D mask, got shape {mask.shape}")
    # Column-major: transpose so that ravel() walks down each column first.
    pixels = np.concatenate([[0], (mask.T.ravel() != 0).astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(pixels))  # 0-based starts and ends alternate
    starts, ends = edges[0::2], edges[1::2]
    runs = np.empty(2 * len(starts), dtype=np.int64)
    runs[0::2] = starts + 1
    runs[1::2] = ends - starts
    return " ".join(map(str, runs))


def decode(rle: str | float | None, shape: tuple[int, int] = (101, 101)) -> np.ndarray:
    """Decode a run-length string to a uint8 mask of ``shape`` (1 = salt).

    An empty string, None or NaN (what pandas reads from an empty CSV cell) is an empty mask.
    Raises RLEError for an odd count of numbers, non-integers, zero lengths, starts below 1,
    runs past the end of the image, and runs that overlap or are out of order.
    """
    height, width = shape
    size = height * width
    if rle is None or (isinstance(rle, float) and np.isnan(rle)):
        rle = ""
    if not isinstance(rle, str):
        raise RLEError(f"expected a string, got {type(rle).__name__}")
    tokens = rle.split()
    if len(tokens) % 2:
        raise RLEError(f"odd number of values ({len(tokens)}): runs are 'start length' pairs")
    try:
        numbers = np.array([int(t) for t in tokens], dtype=np.int64).reshape(-1, 2)
    except ValueError as err:
        raise RLEError(f"non-integer value in run-length string: {err}") from None
    starts, lengths = numbers[:, 0] - 1, numbers[:, 1]
    if (starts < 0).any():
        raise RLEError(f"start {starts[starts < 0][0] + 1} is below 1 (starts are 1-indexed)")
    if (lengths < 1).any():
        raise RLEError(f"run length {lengths[lengths < 1][0]} is not positive")
    ends = starts + lengths
    if (ends > size).any():
        i = int(np.argmax(ends > size))
        raise RLEError(
            f"run '{starts[i] + 1} {lengths[i]}' ends at pixel {ends[i]}, past the "
            f"{height}x{width} image ({size} pixels)"
        )
    # Each run must start after the previous one ends: this rules out overlap and disorder at once.
    bad = np.flatnonzero(starts[1:] < ends[:-1])
    if bad.size:
        i = int(bad[0]) + 1
        raise RLEError(
            f"run '{starts[i] + 1} {lengths[i]}' overlaps or precedes the run before it "
            f"('{starts[i - 1] + 1} {lengths[i - 1]}'): runs must be sorted and disjoint"
        )
    flat = np.zeros(size + 1, dtype=np.int8)
    np.add.at(flat, starts, 1)
    np.add.at(flat, ends, -1)
    return (np.cumsum(flat[:size]) > 0).astype(np.uint8).reshape(width, height).T.copy()
