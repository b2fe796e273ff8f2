"""Monochrome GenICam pixel formats: their dtype, bit depth, and vectorized unpackers.

Layouts follow the GenICam Pixel Format Naming Convention (PFNC 2.x): the ``...p`` formats pack
pixels LSB-first into a continuous bit stream (Mono10p: 4 pixels in 5 bytes); the GigE Vision
``...Packed`` formats pack 2 pixels in 3 bytes with the high bits of each pixel in a whole byte
and the low bits of both sharing the middle byte.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PixelFormat:
    """A pixel format the driver can deliver.

    Attributes
    ----------
    name : str
        PFNC name (the PixelFormat node's symbolic value).
    code : int
        PFNC 32-bit code, as GenTL buffers report it.
    bits : int
        Significant bits per pixel.
    dtype : numpy.dtype
        Dtype of delivered frames.
    group_pixels, group_bytes : int
        A packed format stores ``group_pixels`` pixels in ``group_bytes`` bytes; 0 when unpacked.
    """

    name: str
    code: int
    bits: int
    dtype: np.dtype
    group_pixels: int = 0
    group_bytes: int = 0

    @property
    def packed(self) -> bool:
        return self.group_pixels > 0

    def nbytes(self, width: int, height: int) -> int:
        """Bytes of one frame of ``width`` x ``height`` pixels, without line padding."""
        if self.packed:
            groups = -(-(width * height) // self.group_pixels)
            return groups * self.group_bytes
        return width * height * self.dtype.itemsize


_U8, _U16 = np.dtype(np.uint8), np.dtype("<u2")

#: Formats the driver delivers, in the order it prefers when the camera's default is unusable.
FORMATS: dict[str, PixelFormat] = {
    f.name: f
    for f in (
        PixelFormat("Mono8", 0x01080001, 8, _U8),
        PixelFormat("Mono10", 0x01100003, 10, _U16),
        PixelFormat("Mono12", 0x01100005, 12, _U16),
        PixelFormat("Mono14", 0x01100025, 14, _U16),
        PixelFormat("Mono16", 0x01100007, 16, _U16),
        PixelFormat("Mono10p", 0x010A0046, 10, _U16, 4, 5),
        PixelFormat("Mono12p", 0x010C0047, 12, _U16, 2, 3),
        PixelFormat("Mono14p", 0x010E0104, 14, _U16, 4, 7),
        PixelFormat("Mono10Packed", 0x010C0004, 10, _U16, 2, 3),
        PixelFormat("Mono12Packed", 0x010C0006, 12, _U16, 2, 3),
    )
}
FORMATS_BY_CODE: dict[int, PixelFormat] = {f.code: f for f in FORMATS.values()}


def _u16(b: np.ndarray) -> np.ndarray:
    return b.astype(np.uint16)


def _mono10p(s: np.ndarray, o: np.ndarray) -> None:
    b0, b1, b2, b3, b4 = (_u16(s[..., i]) for i in range(5))
    o[..., 0] = b0 | ((b1 & 0x03) << 8)
    o[..., 1] = (b1 >> 2) | ((b2 & 0x0F) << 6)
    o[..., 2] = (b2 >> 4) | ((b3 & 0x3F) << 4)
    o[..., 3] = (b3 >> 6) | (b4 << 2)


def _mono12p(s: np.ndarray, o: np.ndarray) -> None:
    b0, b1, b2 = (_u16(s[..., i]) for i in range(3))
    o[..., 0] = b0 | ((b1 & 0x0F) << 8)
    o[..., 1] = (b1 >> 4) | (b2 << 4)


def _mono14p(s: np.ndarray, o: np.ndarray) -> None:
    b0, b1, b2, b3, b4, b5, b6 = (_u16(s[..., i]) for i in range(7))
    o[..., 0] = b0 | ((b1 & 0x3F) << 8)
    o[..., 1] = (b1 >> 6) | (b2 << 2) | ((b3 & 0x0F) << 10)
    o[..., 2] = (b3 >> 4) | (b4 << 4) | ((b5 & 0x03) << 12)
    o[..., 3] = (b5 >> 2) | (b6 << 6)


def _mono10packed(s: np.ndarray, o: np.ndarray) -> None:
    b0, b1, b2 = (_u16(s[..., i]) for i in range(3))
    o[..., 0] = (b0 << 2) | (b1 & 0x03)
    o[..., 1] = (b2 << 2) | ((b1 >> 4) & 0x03)


def _mono12packed(s: np.ndarray, o: np.ndarray) -> None:
    b0, b1, b2 = (_u16(s[..., i]) for i in range(3))
    o[..., 0] = (b0 << 4) | (b1 & 0x0F)
    o[..., 1] = (b2 << 4) | (b1 >> 4)


_KERNELS = {
    "Mono10p": _mono10p,
    "Mono12p": _mono12p,
    "Mono14p": _mono14p,
    "Mono10Packed": _mono10packed,
    "Mono12Packed": _mono12packed,
}


def unpack(src: np.ndarray, fmt: str, out: np.ndarray) -> None:
    """Unpack a packed monochrome frame into ``out``.

    Parameters
    ----------
    src : numpy.ndarray
        uint8 bytes: 1-D (the frame as one bit stream) or 2-D ``(height, line_bytes)`` (each line
        packed on its own, possibly followed by padding).
    fmt : str
        A packed format of :data:`FORMATS` (e.g. ``"Mono12p"``).
    out : numpy.ndarray
        uint16 array ``(height, width)``, C-contiguous, written in place.

    Raises
    ------
    ValueError
        Unknown format, or ``src`` too short for ``out``.
    """
    pf = FORMATS.get(fmt)
    if pf is None or not pf.packed:
        raise ValueError(f"{fmt!r} is not a packed format; packed: {', '.join(_KERNELS)}")
    g, nb = pf.group_pixels, pf.group_bytes
    h, w = out.shape
    if src.ndim == 2 and w % g == 0:
        need = w // g * nb
        if src.shape[0] < h or src.shape[1] < need:
            raise ValueError(f"{fmt} lines of {w} pixels need {need} bytes, got {src.shape[1]}")
        _KERNELS[fmt](src[:h, :need].reshape(h, w // g, nb), out.reshape(h, w // g, g))
        return
    flat_src = src.reshape(-1)
    n = h * w
    full = n // g
    if flat_src.size < pf.nbytes(w, h):
        raise ValueError(f"{fmt} {w}x{h} needs {pf.nbytes(w, h)} bytes, got {flat_src.size}")
    flat_out = out.reshape(-1)
    _KERNELS[fmt](flat_src[: full * nb].reshape(full, nb), flat_out[: full * g].reshape(full, g))
    if full * g < n:  # a last, partial group
        tail = np.empty((1, g), np.uint16)
        _KERNELS[fmt](flat_src[full * nb : (full + 1) * nb].reshape(1, nb), tail)
        flat_out[full * g :] = tail[0, : n - full * g]
