"""The streaming frame copy: the numba kernel, and VideoBuffer's large-frame writes through it."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from buffers import VideoBuffer
from buffers._stream import (
    EXPLORE_EVERY,
    STREAM_MIN_BYTES,
    TIME_EVERY,
    CopyChooser,
    slots_stream,
    stream_copy,
)


@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 63, 64, 65, 1000, 4096 + 7])
def test_kernel_copies_every_byte(n):
    rng = np.random.default_rng(n)
    src = rng.integers(0, 256, n + 3, dtype=np.uint8)[3:]  # an unaligned source
    dst = np.zeros(n + 32, np.uint8)
    start = (-dst.ctypes.data) % 16  # the kernel's contract: an aligned destination
    stream_copy(dst[start : start + n], src)
    np.testing.assert_array_equal(dst[start : start + n], src)
    assert not dst[:start].any() and not dst[start + n :].any()  # nothing written around it


def test_kernel_loads_ready_for_bytes_frames():
    """A frame given as ``bytes`` is a read-only array, a numba type of its own: its machine code
    is loaded with the kernel (in the loading thread), not on the first such frame."""
    from buffers._stream_kernel import stream

    loaded = [sig[1] for sig in stream.signatures]
    assert any(not t.mutable for t in loaded) and any(t.mutable for t in loaded)
    frame = bytes(range(256)) * 4
    dst = np.zeros(len(frame), np.uint8)
    stream_copy(dst, np.frombuffer(frame, np.uint8))
    assert dst.tobytes() == frame
    assert len(stream.signatures) == len(loaded)  # nothing compiled or loaded on the way


def test_which_slots_stream():
    raw = np.zeros(4 * STREAM_MIN_BYTES + 64, np.uint8)
    start = (-raw.ctypes.data) % 16
    aligned = raw[start : start + 4 * STREAM_MIN_BYTES]
    assert slots_stream(aligned.reshape(4, STREAM_MIN_BYTES))
    assert not slots_stream(raw[start + 2 :][: 2 * STREAM_MIN_BYTES].reshape(2, -1))  # unaligned
    assert not slots_stream(aligned.reshape(8, -1))  # too small to gain
    assert not slots_stream(raw[start:][: 2 * (STREAM_MIN_BYTES + 8)].reshape(2, -1))  # odd size


def test_chooser_copies_both_ways_and_keeps_the_faster():
    rng = np.random.default_rng(5)
    src = rng.integers(0, 256, (4, STREAM_MIN_BYTES), dtype=np.uint8)
    raw = np.zeros(STREAM_MIN_BYTES + 16, np.uint8)
    start = (-raw.ctypes.data) % 16
    dst = raw[start : start + STREAM_MIN_BYTES]
    chooser = CopyChooser()
    assert chooser.streaming  # before any measurement
    for i in range(3 * EXPLORE_EVERY):
        chooser.copy(dst, src[i % 4])
        np.testing.assert_array_equal(dst, src[i % 4])  # every copy, whichever way it went
    plain, streamed = chooser._cost
    assert plain > 0 and streamed > 0  # both ways measured
    assert chooser.streaming == (streamed < plain)


def test_once_plain_wins_most_copies_go_untimed():
    chooser = CopyChooser()
    assert not any(chooser.untimed() for _ in range(3 * TIME_EVERY))  # streaming: all timed
    chooser._stream = False  # as after plain copies measured faster
    calls = [chooser.untimed() for _ in range(4 * TIME_EVERY)]
    timed = [i for i, untimed in enumerate(calls) if not untimed]
    assert timed == [TIME_EVERY - 1 + k * TIME_EVERY for k in range(4)]  # one in TIME_EVERY


@pytest.mark.parametrize("shape", [(512, 512), (600, 300), (513, 257), (64, 48)])
def test_videobuffer_frames_roundtrip(shape):
    """Every input form reads back, large frames (streamed) and small ones (np.copyto) alike."""
    h, w = shape
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 65535, (3, h, w), dtype=np.uint16)
    with VideoBuffer(create=True, n_stacks=2, width=w, height=h, n_images=3, bits=16) as vb:
        assert vb._streams == (vb.image_size >= STREAM_MIN_BYTES and vb.image_size % 16 == 0)
        vb.write_image_and_timestamp(frames[0].T, 0.0)  # the documented frame.T
        vb.write_image_and_timestamp(frames[1].tobytes(), 1.0)  # bytes-like
        vb.write_image_and_timestamp(np.ascontiguousarray(frames[2].T), 2.0)  # strided source
        stack, ts = vb.peak_stack()
        np.testing.assert_array_equal(stack, frames.transpose(2, 1, 0))
        np.testing.assert_array_equal(ts, [0.0, 1.0, 2.0])
        for k in range(3):  # the second stack, after a wait-free and a full-ring write
            vb.write_image_and_timestamp(frames[k].T, 3.0 + k)
        with pytest.raises(Exception, match="full"):
            vb.write_image_and_timestamp(frames[0].T, 9.0)
        vb.read_stack_no_return()
        vb.write_image_and_timestamp(frames[0].T, 6.0)
        np.testing.assert_array_equal(vb.peak_stack()[0], frames.transpose(2, 1, 0))
        vb.read_stack_no_return()
        vb._chooser._stream = False  # as once plain copies measured faster: mostly untimed
        for k in range(2 * TIME_EVERY):  # both input forms, timed copies and untimed ones
            if vb.get_unread_stack_count() == vb.n_stacks:
                vb.read_stack_no_return()
            source = (frames[k % 3].T, frames[k % 3].tobytes())[k % 2]
            vb.write_image_and_timestamp(source, 10.0 + k)
            newest = np.frombuffer(vb.peak_image()[1], np.uint16).reshape(h, w)
            np.testing.assert_array_equal(newest, frames[k % 3])


def test_without_numba_frames_are_copied_plainly():
    """buffers needs only numpy: with numba unimportable, a large frame still goes through."""
    code = textwrap.dedent(
        """
        import sys
        sys.modules["numba"] = None  # import numba -> ImportError
        import numpy as np
        from buffers import VideoBuffer
        frame = np.arange(512 * 512, dtype=np.uint16).reshape(512, 512)
        with VideoBuffer(create=True, n_stacks=1, width=512, height=512, n_images=1,
                         bits=16, namespace=sys.argv[1]) as vb:
            assert vb._streams
            vb.write_image_and_timestamp(frame.T, 1.0)
            image, ts = vb.read_image()
            assert (image == frame.T).all() and ts == 1.0
        print("ok")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code, os.environ.get("MAGACQ_NAMESPACE", "default") + "-nonumba"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok" and "without streaming" in out.stderr


def test_first_write_does_not_wait_for_numba():
    """A fresh producer's first large frame is copied plainly while the streaming kernel loads
    in a thread (here told to wait 2 s first, so that the check cannot race it); later frames
    stream, every one exact."""
    code = textwrap.dedent(
        """
        import sys
        import numpy as np
        from buffers import VideoBuffer, _stream
        _stream._LOAD_DELAY_S = 2.0
        frames = np.arange(3 * 512 * 512, dtype=np.uint16).reshape(3, 512, 512)
        with VideoBuffer(create=True, n_stacks=1, width=512, height=512, n_images=40,
                         bits=16, namespace=sys.argv[1]) as vb:
            vb.write_image_and_timestamp(frames[0].T, 0.0)
            assert _stream._kernel is None and not _stream._loading.is_set()
            _stream.wait_for_kernel()
            assert _stream._kernel is not None
            for i in range(1, 40):
                vb.write_image_and_timestamp(frames[i % 3].T, float(i))
            assert vb._chooser._n > 0  # later copies went through the chooser (streaming first)
            for i in range(40):
                image, ts = vb.read_image()
                assert (image == frames[i % 3].T).all() and ts == i
        print("ok")
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code, os.environ.get("MAGACQ_NAMESPACE", "default") + "-first"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"
