"""Typed driver settings: one pydantic model per driver, unknown keys refused."""

from collections.abc import Mapping
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from hal._errors import UnsupportedSettingError

S = TypeVar("S", bound="DeviceSettings")


class DeviceSettings(BaseModel):
    """Base of every driver's settings model: strict keys, validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def validate_settings(model: type[S], values: Mapping[str, Any] | None, *, device: str) -> S:
    """Validate ``values`` against ``model``.

    Raises
    ------
    UnsupportedSettingError
        One line per problem, naming the setting and listing the allowed settings.
    """
    try:
        return model.model_validate(dict(values or {}))
    except ValidationError as exc:
        allowed = ", ".join(sorted(model.model_fields)) or "(none)"
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(settings)"
            if err["type"] == "extra_forbidden":
                problems.append(f"unknown setting {key!r}")
            else:
                msg = err["msg"].removeprefix("Value error, ")
                problems.append(f"{key}: {msg} (got {err.get('input')!r})")
        raise UnsupportedSettingError(
            f"{device}: " + "; ".join(problems) + f". Allowed settings: {allowed}"
        ) from None
