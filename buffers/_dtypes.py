"""Pixel dtypes by bit width."""

import numpy as np

bit_to_dtype: dict[int, type[np.unsignedinteger]] = {
    8: np.uint8,
    16: np.uint16,
    32: np.uint32,
    64: np.uint64,
}
"""Unsigned integer NumPy type for each supported bit width."""


def int_to_uint_dtype(bits: int) -> type[np.unsignedinteger]:
    """Return the unsigned integer NumPy dtype matching ``bits``.

    Parameters
    ----------
    bits : int
        Width of the target integer in bits: 8, 16, 32 or 64.

    Returns
    -------
    numpy.dtype
        Unsigned integer dtype corresponding to ``bits``.

    Raises
    ------
    ValueError
        If ``bits`` is not one of the supported widths.
    """
    if bits not in bit_to_dtype:
        raise ValueError(f"Unsupported bit width: {bits} (supported: 8, 16, 32, 64)")
    return bit_to_dtype[bits]
