"""Which way a platform-specific mechanism goes, forced portable by ``MAGACQ_PORTABLE=1``.

Each mechanism has a portable way (every platform) and may have a faster one where the platform
offers it. ``MAGACQ_PORTABLE=1`` (any value but ``0``) takes the portable way everywhere, so
Linux CI runs what macOS and Windows run. Each choice is logged once per process (again if it
changes).
"""

import logging
import os

ENV = "MAGACQ_PORTABLE"
_log = logging.getLogger("buffers")
_logged: dict[str, bool] = {}


def portable_forced() -> bool:
    """Whether ``MAGACQ_PORTABLE`` forces the portable ways."""
    return os.environ.get(ENV, "") not in ("", "0")


def choose(what: str, fast_possible: bool, fast: str, portable: str) -> bool:
    """Whether ``what`` takes its fast way (possible here, not forced off); logs the choice.

    Parameters
    ----------
    what : str
        The mechanism, for the log.
    fast_possible : bool
        Whether this platform has the fast way.
    fast, portable : str
        What each way is, for the log.
    """
    use = fast_possible and not portable_forced()
    if _logged.get(what) is not use:
        _logged[what] = use
        _log.debug("%s: %s", what, fast if use else portable)
    return use
