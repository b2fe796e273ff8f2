"""magacq: acquisition and live bead tracking for magnetic tweezers."""

from importlib.metadata import version

__version__ = version("magacq")
