"""salt_tf/tiles/framing.py: windows framed as the competition's tiles were."""
import numpy as np

from salt_tf.tiles import framing


def test_stretch_maps_each_window_onto_0_255_leaving_out_no_data():
    rng = np.random.default_rng(3)
    tile = rng.integers(0, 256, (101, 101)).astype(np.float32)
    tile[0, 0], tile[0, 1] = 0, 255
    values = np.stack([tile, 3.0 * tile - 40.0, np.full((101, 101), 7.0), tile.copy()])
    values[3, :, :10] = np.nan  # no data: out of the min and max, mid-grey
    values[3, 5, 50], values[3, 6, 50] = -1000.0, 1000.0
    got = framing.stretch(values)
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got[0], tile.astype(np.uint8))  # a released tile comes back as it was
    np.testing.assert_array_equal(got[1], tile.astype(np.uint8))  # whatever its gain and offset
    assert not got[2].any()  # no spread: black, like the competition's empty tiles
    assert (got[3, :, :10] == 128).all() and got[3, 5, 50] == 0 and got[3, 6, 50] == 255
