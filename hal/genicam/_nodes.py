"""Reading and writing GenICam nodes with errors that say what the camera accepts."""

import difflib
from collections.abc import Mapping
from typing import Any

from hal._errors import DeviceError, UnsupportedSettingError

NodeValue = bool | int | float | str

# Nodes whose value bounds or meaning depend on others come after them: user set and selectors,
# then pixel format and binning/decimation (they change Width/Height maxima), then the region,
# then exposure before frame rate (the frame rate's maximum depends on the exposure).
# Anything not listed keeps its order from the settings, after these.
ORDER = (
    "UserSetSelector",
    "UserSetLoad",
    "AcquisitionMode",
    "PixelFormat",
    "ADCBitDepth",
    "BinningSelector",
    "BinningHorizontalMode",
    "BinningVerticalMode",
    "BinningHorizontal",
    "BinningVertical",
    "DecimationHorizontal",
    "DecimationVertical",
    "ReverseX",
    "ReverseY",
    "Width",
    "Height",
    "OffsetX",
    "OffsetY",
    "ExposureMode",
    "ExposureAuto",
    "ExposureTime",
    "ExposureTimeAbs",
    "AcquisitionFrameRateEnable",
    "AcquisitionFrameRateEnabled",
    "AcquisitionFrameRate",
    "AcquisitionFrameRateAbs",
)
_RANK = {name: i for i, name in enumerate(ORDER)}

_WRITABLE = ("RW", "WO")
_READABLE = ("RW", "RO")


def ordered(values: Mapping[str, NodeValue]) -> list[tuple[str, NodeValue]]:
    """``values`` as (name, value) pairs in an order a camera accepts (see :data:`ORDER`)."""
    items = list(values.items())
    return sorted(items, key=lambda kv: (_RANK.get(kv[0], len(ORDER)), items.index(kv)))


_ACCESS_NAMES = ("NI", "NA", "WO", "RO", "RW")  # GenApi EAccessMode, by value


def access(node: Any) -> str:
    """The node's access mode: "RW", "RO", "WO", "NA" (not available now), "NI"."""
    mode = int(node.node.get_access_mode())
    return _ACCESS_NAMES[mode] if 0 <= mode < len(_ACCESS_NAMES) else "NA"


def get_node(node_map: Any, name: str) -> Any:
    """The node called ``name``.

    Raises
    ------
    UnsupportedSettingError
        The camera has no such node; the message suggests close names.
    """
    if not node_map.has_node(name):
        features = [
            n.node.name for n in node_map.nodes if type(n).__name__ not in ("ICategory", "IPort")
        ]
        close = difflib.get_close_matches(name, features, n=5, cutoff=0.6)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UnsupportedSettingError(f"the camera has no node {name!r}{hint}")
    return node_map.get_node(name)


def describe(node: Any) -> str:
    """What a node accepts: its enum entries, or its numeric range and step."""
    kind = type(node).__name__
    try:
        if kind == "IEnumeration":
            return "one of " + ", ".join(node.symbolics)
        if kind == "IInteger":
            return f"an integer in [{node.min}, {node.max}] in steps of {node.inc}"
        if kind == "IFloat":
            step = f" in steps of {node.inc}" if node.has_inc() else ""
            unit = f" {node.unit}" if node.unit else ""
            return f"a number in [{node.min}, {node.max}]{unit}{step}"
        if kind == "IBoolean":
            return "true or false"
        if kind == "IString":
            return "a string"
    except Exception as exc:  # a node whose bounds are unreadable right now
        return f"a {kind} value ({exc})"
    return f"a {kind} value"


def read_node(node_map: Any, name: str) -> NodeValue:
    """The value of node ``name`` (enumerations as their symbolic name)."""
    node = get_node(node_map, name)
    if access(node) not in _READABLE:
        raise UnsupportedSettingError(f"node {name!r} is not readable (access {access(node)})")
    try:
        return node.value
    except Exception as exc:
        raise DeviceError(f"reading node {name!r} failed: {exc}") from None


def write_node(node_map: Any, name: str, value: NodeValue) -> None:
    """Set node ``name`` to ``value``; commands are executed when ``value`` is true.

    Raises
    ------
    UnsupportedSettingError
        No such node, not writable now, a value of the wrong type, or out of what the node
        accepts; the message lists the allowed values or the range.
    DeviceError
        The camera refused the write for another reason.
    """
    node = get_node(node_map, name)
    kind = type(node).__name__
    mode = access(node)
    if mode not in _WRITABLE:
        raise UnsupportedSettingError(
            f"node {name!r} is not writable now (access {mode}); it holds {node.value!r}"
            if mode in _READABLE
            else f"node {name!r} is not available now (access {mode})"
        )
    try:
        if kind == "ICommand":
            if value is True:
                node.execute()
                return
            raise TypeError
        if kind == "IEnumeration":
            if not isinstance(value, str) or value not in node.symbolics:
                raise ValueError
        elif kind == "IInteger":
            if isinstance(value, bool) or not isinstance(value, int):
                if not (isinstance(value, float) and value.is_integer()):
                    raise TypeError
                value = int(value)
            if not node.min <= value <= node.max or (value - node.min) % max(node.inc, 1):
                raise ValueError
        elif kind == "IFloat":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError
            value = float(value)
            if not node.min <= value <= node.max:
                raise ValueError
        elif kind == "IBoolean":
            if not isinstance(value, bool):
                raise TypeError
        elif kind == "IString":
            if not isinstance(value, str):
                raise TypeError
        else:
            raise UnsupportedSettingError(f"node {name!r} is a {kind}; it cannot be set")
        node.value = value
    except (TypeError, ValueError):
        what = "true (to execute it)" if kind == "ICommand" else describe(node)
        raise UnsupportedSettingError(f"node {name!r} must be {what}; got {value!r}") from None
    except UnsupportedSettingError:
        raise
    except Exception as exc:  # genapi.GenericException and its kind: the camera said no
        raise UnsupportedSettingError(
            f"node {name!r} refused {value!r} (it accepts {describe(node)}): {exc}"
        ) from None


def apply_nodes(node_map: Any, values: Mapping[str, NodeValue]) -> None:
    """Write every node of ``values``, in a valid order.

    Offsets are zeroed before Width/Height are written so that a larger region fits, then set.
    """
    names = set(values)
    for axis, size in (("OffsetX", "Width"), ("OffsetY", "Height")):
        if size in names and node_map.has_node(axis):
            node = node_map.get_node(axis)
            if access(node) in _WRITABLE and node.value != node.min:
                node.value = node.min
    for name, value in ordered(values):
        write_node(node_map, name, value)
