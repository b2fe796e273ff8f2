"""The hal conformance suite over every registered driver; unusable ones skipped with why."""

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
def conformance_spec(request):
    spec = spec_for_driver(request.param)
    module = importlib.import_module(next(d.target for d in _DRIVERS if d.name == request.param))
    if not hasattr(module, "CONFORMANCE"):
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
