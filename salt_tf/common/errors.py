"""The error every seismic reader, checker and writer raises for input it cannot use."""
from __future__ import annotations


class SectionError(ValueError):
    """An input section or volume that cannot be segmented, or an output that must not be written.

    The message names the file and what is wrong; segment.py prints it as one ``error:`` line."""
