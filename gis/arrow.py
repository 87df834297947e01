"""Small Arrow helpers of the binary writers (ingest's binary COPY, :mod:`gis.flatgeobuf`)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def fixed_width_binary(data, width: int, n: int, validity: pa.Buffer | None = None) -> pa.Array:
    """``n`` values of ``width`` bytes each, as an Arrow binary array over ``data`` (no copy).

    Parameters
    ----------
    data : bytes-like
        ``n * width`` bytes (bytes, or a contiguous numpy array).
    width, n : int
        Bytes per value, number of values.
    validity : pyarrow.Buffer, optional
        A validity bitmap (NULL where a bit is 0); none: every value is valid.

    Examples
    --------
    >>> fixed_width_binary(b"abcdef", 3, 2).to_pylist()
    [b'abc', b'def']
    """
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    return pa.Array.from_buffers(pa.binary(), n, [validity, pa.py_buffer(offsets), pa.py_buffer(data)])
