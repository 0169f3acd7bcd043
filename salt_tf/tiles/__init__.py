"""The competition's 101x101 tiles: reading a data set, folds, the tf.data pipeline, the synthetic tile set, RLE and the competition metric. Imports only ``common``."""
