"""The vectorized unpackers against a bit-by-bit reference built from the formats' layouts."""

import zlib

import numpy as np
import pytest

from hal.genicam import FORMATS, unpack

PACKED = [name for name, f in FORMATS.items() if f.packed]


def layout(fmt: str) -> dict[tuple[int, int], tuple[int, int]]:
    """(pixel in group, pixel bit) -> (byte in group, byte bit), written from the format specs."""
    pf = FORMATS[fmt]
    bits = pf.bits
    if fmt.endswith("p"):  # PFNC: one LSB-first bit stream
        return {
            (p, k): divmod(p * bits + k, 8) for p in range(pf.group_pixels) for k in range(bits)
        }
    # GigE Vision: byte 0 = p0's high 8 bits, byte 2 = p1's high 8 bits, byte 1 = the low bits
    # of p0 from bit 0 and of p1 from bit 4.
    low = bits - 8
    table = {}
    for p, (high_byte, low_shift) in enumerate(((0, 0), (2, 4))):
        for k in range(bits):
            table[(p, k)] = (high_byte, k - low) if k >= low else (1, low_shift + k)
    return table


def ref_unpack(data: bytes, fmt: str, n: int) -> list[int]:
    pf, table = FORMATS[fmt], layout(fmt)
    pixels = []
    for i in range(n):
        group, p = divmod(i, pf.group_pixels)
        value = 0
        for k in range(pf.bits):
            byte, bit = table[(p, k)]
            value |= ((data[group * pf.group_bytes + byte] >> bit) & 1) << k
        pixels.append(value)
    return pixels


def ref_pack(pixels: list[int], fmt: str) -> bytes:
    pf, table = FORMATS[fmt], layout(fmt)
    out = bytearray(pf.nbytes(len(pixels), 1))
    for i, value in enumerate(pixels):
        group, p = divmod(i, pf.group_pixels)
        for k in range(pf.bits):
            byte, bit = table[(p, k)]
            out[group * pf.group_bytes + byte] |= ((value >> k) & 1) << bit
    return bytes(out)


@pytest.mark.parametrize("fmt", PACKED)
@pytest.mark.parametrize("shape", [(1, 4), (3, 8), (5, 12), (7, 3), (2, 5)])
def test_unpack_matches_reference_on_random_bytes(fmt: str, shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(zlib.crc32(f"{fmt}{shape}".encode()))
    h, w = shape
    data = rng.integers(0, 256, FORMATS[fmt].nbytes(w, h), dtype=np.uint8)
    out = np.full(shape, 0xFFFF, np.uint16)
    unpack(data, fmt, out)
    assert out.ravel().tolist() == ref_unpack(data.tobytes(), fmt, h * w)


@pytest.mark.parametrize("fmt", PACKED)
def test_unpack_inverts_reference_pack(fmt: str) -> None:
    bits = FORMATS[fmt].bits
    rng = np.random.default_rng(bits)
    pixels = rng.integers(0, 2**bits, (6, 16), dtype=np.uint16)
    pixels[0, :4] = [0, 2**bits - 1, 1, 2 ** (bits - 1)]
    packed = np.frombuffer(ref_pack(pixels.ravel().tolist(), fmt), np.uint8)
    out = np.zeros_like(pixels)
    unpack(packed, fmt, out)
    np.testing.assert_array_equal(out, pixels)


@pytest.mark.parametrize("fmt", PACKED)
def test_unpack_padded_lines(fmt: str) -> None:
    """Lines that the camera pads at their end (GenTL padding_x) unpack line by line."""
    pf = FORMATS[fmt]
    h, w, pad = 4, 8, 3
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 2**pf.bits, (h, w), dtype=np.uint16)
    line = pf.nbytes(w, 1)
    lines = np.zeros((h, line + pad), np.uint8)
    for r in range(h):
        lines[r, :line] = np.frombuffer(ref_pack(pixels[r].tolist(), fmt), np.uint8)
    lines[:, line:] = 0xA5
    out = np.zeros_like(pixels)
    unpack(lines, fmt, out)
    np.testing.assert_array_equal(out, pixels)


def test_unpack_refuses_short_data_and_unknown_formats() -> None:
    out = np.zeros((4, 4), np.uint16)
    with pytest.raises(ValueError, match="needs 24 bytes"):
        unpack(np.zeros(10, np.uint8), "Mono12p", out)
    with pytest.raises(ValueError, match="not a packed format"):
        unpack(np.zeros(32, np.uint8), "Mono16", out)


def test_format_table() -> None:
    assert FORMATS["Mono8"].dtype == np.uint8 and FORMATS["Mono8"].bits == 8
    assert FORMATS["Mono12p"].nbytes(4, 2) == 12
    assert FORMATS["Mono10p"].nbytes(5, 1) == 10  # a partial group still takes a whole group
    assert all(f.dtype == np.uint16 for n, f in FORMATS.items() if n != "Mono8")
