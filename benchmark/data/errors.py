"""The one exception the dataset layer raises for problems with source data.

A `DataError` message always names the dataset or file concerned and says what to do about it
(check a URL, place a file by hand, re-run the download), so that a failed DVC stage explains
itself without a traceback being read.
"""

from __future__ import annotations


class DataError(Exception):
    """Source data is missing, unreachable, incomplete, corrupt or not the expected file."""
