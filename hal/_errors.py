"""Errors raised by hal and its drivers; the CLI prints each as one line."""


class HalError(Exception):
    """Base of every hardware-abstraction error."""


class DeviceError(HalError):
    """The device or its vendor library reported a failure."""


class DriverNotFoundError(HalError, LookupError):
    """No driver is registered under that name, or a ``module:Class`` path does not resolve."""


class UnsupportedSettingError(HalError, ValueError):
    """An unknown setting or a value the device does not accept; the message lists what is."""


class HalTimeoutError(HalError, TimeoutError):
    """No frame (or no settled stage) within the timeout."""


class AcquisitionEnded(HalError):
    """A finite acquisition has delivered all its frames, or the camera was stopped."""


class LibraryMissingError(HalError, ImportError):
    """The vendor library a driver needs is not installed."""
