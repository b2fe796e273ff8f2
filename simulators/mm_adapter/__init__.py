"""The MagacqTest Micro-Manager device adapter (C++) and its build."""

from simulators.mm_adapter.build import (
    DEVICE_INTERFACE_VERSION,
    LIBRARY_NAME,
    MODULE_NAME,
    AdapterBuildError,
    build_adapter,
)

__all__ = [
    "DEVICE_INTERFACE_VERSION",
    "LIBRARY_NAME",
    "MODULE_NAME",
    "AdapterBuildError",
    "build_adapter",
]
