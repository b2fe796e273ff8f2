"""A hardware memory fence compiled by numba (a module of its own: numba is slow to import)."""

from numba import njit, types
from numba.extending import intrinsic


@intrinsic
def fence_seq_cst(typingctx):
    """A full fence (``mfence`` on x86-64, ``dmb ish`` on arm64)."""

    def codegen(context, builder, signature, args):
        builder.fence("seq_cst")
        return context.get_dummy_value()

    return types.void(), codegen


@njit(cache=True, nogil=True)
def fence() -> None:
    """Order every load and store before this call before every one after it."""
    fence_seq_cst()  # type: ignore[call-arg]  # numba supplies typingctx


fence()  # load the (cached) machine code now, not on first use
