"""The reference's segment attributes (``_shm``, ``_ts_shm``, ...): code written for the reference
tears a buffer down by closing and unlinking them (issue 19)."""

import gc
import weakref

import pytest

from buffers import BeadRoiBuffer, MatrixBuffer, VideoBuffer, ZLUTSweepDataset
from tests.segments import segment_exists

from .test_faults import create, ns

ATTRS = {
    "video": ("_shm", "_ts_shm", "_idx_shm", "_shm_info"),
    "matrix": ("_shm", "_idx_shm", "_shm_info"),
    "bead_roi": ("_shm_data", "_shm_occupancy", "_shm_info"),
    "zlut_sweep": ZLUTSweepDataset._SHM_ATTRS,
}


def attach(kind: str, namespace: str):
    if kind == "video":
        return VideoBuffer(create=False, namespace=namespace)
    if kind == "matrix":
        return MatrixBuffer(create=False, name="m", namespace=namespace)
    if kind == "bead_roi":
        return BeadRoiBuffer(create=False, namespace=namespace)
    return ZLUTSweepDataset.attach(namespace=namespace)


def segment_of(buf, kind: str) -> str:
    return getattr(buf, ATTRS[kind][0]).name


@pytest.mark.parametrize("kind", list(ATTRS))
def test_closing_and_unlinking_the_attributes_closes_the_buffer(kind):
    owner = create(kind, ns("h"), 2)
    name = segment_of(owner, kind)
    peer = attach(kind, ns("h"))
    for attr in ATTRS[kind]:  # as the reference's consumers detach: close only
        getattr(peer, attr).close()
    assert peer.closed and segment_exists(name) and not owner.closed
    for attr in ATTRS[kind]:  # as the reference's owner tears down: close, then unlink
        handle = getattr(owner, attr)
        handle.close()
        handle.unlink()
    assert owner.closed and not segment_exists(name)
    getattr(owner, ATTRS[kind][0]).close()  # again: nothing left to do


@pytest.mark.parametrize("kind", list(ATTRS))
def test_the_attributes_do_not_keep_a_buffer_alive(kind):
    owner = create(kind, ns("h"), 2)
    name, gone = segment_of(owner, kind), weakref.ref(owner)
    gc.disable()  # freed by its last reference going, not by a cycle collection
    try:
        del owner
        assert gone() is None and not segment_exists(name)
    finally:
        gc.enable()


def test_unlink_through_an_attribute_removes_the_name_at_once():
    with VideoBuffer(create=True, n_stacks=2, width=4, height=3, n_images=1, bits=8,
                     namespace=ns("h")) as vb:  # fmt: skip
        name = segment_of(vb, "video")
        vb._idx_shm.unlink()
        assert not segment_exists(name)
        vb.write_image_and_timestamp(bytes(12), 1.0)  # the mapping stays until closed
        assert vb.check_read_stack()
