"""magacq: acquisition and live bead tracking for magnetic tweezers."""

from typing import Any


def __getattr__(name: str) -> Any:
    """``__version__``, read from the installed metadata when asked (importlib.metadata costs
    every child process of a run about 0.1 s at start-up otherwise)."""
    if name == "__version__":
        from importlib.metadata import version

        return version("magacq")
    raise AttributeError(f"module 'magacq' has no attribute {name!r}")
