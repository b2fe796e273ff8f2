"""The hal conformance suite over every registered driver; unusable ones skipped with why.

Settings come from each driver module's ``CONFORMANCE``, or from ``session_conformance``
(conftest.py) where they name something the session has to build first.
"""

import importlib

import pytest

from hal import UnsupportedSettingError, list_drivers
from hal.conformance import DriverConformance, spec_for_driver

_DRIVERS = list_drivers()


@pytest.fixture(
    params=[
        pytest.param(
            d.name,
            marks=[] if d.usable else pytest.mark.skip(reason=f"{d.name}: {d.reason}"),
        )
        for d in _DRIVERS
    ],
    ids=[d.name for d in _DRIVERS],
)
def conformance_spec(request, session_conformance):
    supplied = session_conformance.get(request.param)
    spec = spec_for_driver(request.param, supplied() if supplied else None)
    module = importlib.import_module(next(d.target for d in _DRIVERS if d.name == request.param))
    if supplied is None and not hasattr(module, "CONFORMANCE"):
        for cls, settings in (
            (spec.camera_class, spec.camera_settings),
            (spec.focus_stage_class, spec.focus_stage_settings),
        ):
            if cls is None:
                continue
            try:
                cls(settings)
            except UnsupportedSettingError as exc:
                pytest.skip(
                    f"{request.param} declares no CONFORMANCE settings and needs some: {exc}"
                )
    return spec


class TestRegisteredDrivers(DriverConformance):
    """Every test of the suite, once per registered driver."""
