"""The streaming frame copy: the numba kernel, and VideoBuffer's large-frame writes through it."""

import numpy as np
import pytest

from buffers import VideoBuffer
from buffers._stream import STREAM_MIN_BYTES, copy_frame


@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 63, 64, 65, 1000, 4096 + 7])
def test_kernel_copies_every_byte(n):
    from buffers._stream_kernel import stream

    rng = np.random.default_rng(n)
    src = rng.integers(0, 256, n + 3, dtype=np.uint8)[3:]  # an unaligned source
    dst = np.zeros(n + 32, np.uint8)
    start = (-dst.ctypes.data) % 16  # the kernel's contract: an aligned destination
    stream(dst[start : start + n], src)
    np.testing.assert_array_equal(dst[start : start + n], src)
    assert not dst[:start].any() and not dst[start + n :].any()  # nothing written around it


@pytest.mark.parametrize("shape", [(512, 512), (513, 257), (1024, 1023)])
def test_copy_frame_large(shape):
    src = np.random.default_rng(1).integers(0, 65535, shape, dtype=np.uint16)
    dst = np.zeros(shape, np.uint16)
    assert dst.nbytes >= STREAM_MIN_BYTES
    copy_frame(dst, src)
    np.testing.assert_array_equal(dst, src)


def test_copy_frame_falls_back_for_other_layouts():
    src = np.random.default_rng(2).integers(0, 65535, (512, 512), dtype=np.uint16)
    dst = np.zeros_like(src)
    copy_frame(dst, src.T)  # not C-contiguous: np.copyto transposes it
    np.testing.assert_array_equal(dst, src.T)
    raw = np.zeros(src.nbytes + 32, np.uint8)
    off = (-raw.ctypes.data) % 16 + 2  # 2 bytes past a 16-byte boundary: the kernel would fault
    unaligned = raw[off : off + src.nbytes].view(np.uint16).reshape(src.shape)
    copy_frame(unaligned, src)
    np.testing.assert_array_equal(unaligned, src)
    with pytest.raises(TypeError):  # casting="no", as np.copyto
        copy_frame(dst, src.astype(np.int32))


def test_videobuffer_large_frames_roundtrip():
    """512x512 uint16 frames go through the streaming path; every input form reads back."""
    h = w = 512
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 65535, (3, h, w), dtype=np.uint16)
    with VideoBuffer(create=True, n_stacks=2, width=w, height=h, n_images=3, bits=16) as vb:
        assert vb.image_size >= STREAM_MIN_BYTES
        vb.write_image_and_timestamp(frames[0].T, 0.0)  # the documented frame.T
        vb.write_image_and_timestamp(frames[1].tobytes(), 1.0)  # bytes-like
        vb.write_image_and_timestamp(np.ascontiguousarray(frames[2].T), 2.0)  # strided source
        stack, ts = vb.peak_stack()
        np.testing.assert_array_equal(stack, frames.transpose(2, 1, 0))
        np.testing.assert_array_equal(ts, [0.0, 1.0, 2.0])
