"""Python protocols: a user's function, checked without running it, loaded in its own process."""

import ast
import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

from magacq.errors import ConfigError

from ._steps import ScriptProtocol


def script_path(protocol: ScriptProtocol, base: Path | None) -> Path:
    """The script's path (relative paths are from ``base``, the config's folder)."""
    p = protocol.script
    return p if p.is_absolute() or base is None else base / p


def check_script(protocol: ScriptProtocol, base: Path | None) -> Path:
    """Refuse a script that does not exist, does not parse or defines no ``protocol.function``.

    The file is parsed, not run: a script's top-level code runs only in the protocol process.
    """
    path = script_path(protocol, base)
    try:
        source = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"protocol.script {path}: not UTF-8 text ({exc.reason})") from None
    except OSError as exc:
        raise ConfigError(f"protocol.script {path}: {exc.strerror or exc}") from None
    try:
        tree = ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        raise ConfigError(f"protocol.script {path}, line {exc.lineno}: {exc.msg}") from None
    defined = {
        node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    if protocol.function not in defined:
        raise ConfigError(
            f"protocol.script {path}: defines no function {protocol.function!r}"
            + (f" (it defines {', '.join(sorted(defined))})" if defined else "")
        )
    return path


def load_script(path: Path, function: str) -> Callable[[Any], Any]:
    """Import the script (in the protocol process) and return its protocol function."""
    spec = importlib.util.spec_from_file_location("magacq_user_protocol", path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"protocol.script {path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    fn: object = getattr(module, function, None)
    if not callable(fn):
        raise ConfigError(f"protocol.script {path}: {function!r} is not a function")
    return fn
