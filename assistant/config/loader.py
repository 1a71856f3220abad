"""Load the configuration: TOML file, then ``ASSISTANT_<SECTION>__<KEY>`` environment overrides.

Loaded once at start-up and passed down; never read at import time. Any problem is a
``ConfigError`` whose message is one line naming the key and the fix; the CLI exits with 2.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Mapping

import msgspec

from .schema import Config

DEFAULT_PATH = Path("/etc/assistant/assistant.toml")
ENV_PREFIX = "ASSISTANT_"


class ConfigError(Exception):
    """The configuration is unusable; ``str(err)`` is one line for the operator."""


def _parse_env_value(raw: str) -> Any:
    """Environment values are TOML values when they parse as one (``1.5``, ``true``, ``["a"]``), else strings."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _env_overrides(environ: Mapping[str, str]) -> dict[tuple[str, ...], tuple[str, Any]]:
    out: dict[tuple[str, ...], tuple[str, Any]] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        parts = tuple(p.lower() for p in name[len(ENV_PREFIX):].split("__"))
        if any(not p for p in parts):
            raise ConfigError(f"environment variable {name}: empty key part; use ASSISTANT_<SECTION>__<KEY>=value")
        out[parts] = (name, _parse_env_value(raw))
    return out


def _merge(data: dict[str, Any], path: tuple[str, ...], value: Any, origin: str) -> None:
    node = data
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{origin}: {'.'.join(path[:-1])} is not a section")
        node = child
    node[path[-1]] = value


_AT = re.compile(r"^(?P<what>.*?)(?: - at `\$(?P<path>[^`]*)`)?$")


def _explain(exc: msgspec.ValidationError, source: str, env_keys: dict[str, str]) -> str:
    """Turn msgspec's validation message into one line naming the key and the fix."""
    m = _AT.match(str(exc))
    what, path = (m.group("what"), m.group("path") or "") if m else (str(exc), "")
    path = path.lstrip(".")
    unknown = re.match(r"Object contains unknown field `(?P<key>[^`]+)`", what)
    if unknown:
        key = f"{path}.{unknown.group('key')}" if path else unknown.group("key")
        section = _section_struct(path)
        valid = ", ".join(sorted(section.__struct_fields__)) if section else ""
        origin = env_keys.get(key, source)
        return f"{key}: unknown key in {origin}; remove it or use one of: {valid}"
    key = re.sub(r"\[\d+\]", "", path)
    if _section_struct(key) is not None:
        # A section's own check of how its values fit together (``__post_init__``): the message names the keys.
        envs = sorted(name for k, name in env_keys.items() if not key or k == key or k.startswith(key + "."))
        origin = " and ".join(([] if envs and source == "built-in defaults" else [source]) + envs)
        return f"{key + ': ' if key else ''}{what.rstrip('.')} (in {origin})"
    origin = env_keys.get(key, source)
    env_name = ENV_PREFIX + "__".join(key.split(".")).upper()
    return f"{key}: {what.rstrip('.')} (from {origin}); fix the value in the file or in {env_name}"


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _no_control_characters(node: Any, key: str, source: str, env_keys: dict[str, str]) -> None:
    """Strings with NUL or other control characters (a pasted escape, a truncated file) are refused
    here, with their key, rather than failing deep inside a service (``embedded null byte``)."""
    if isinstance(node, dict):
        for k, v in node.items():
            _no_control_characters(v, f"{key}.{k}" if key else str(k), source, env_keys)
    elif isinstance(node, list):
        for v in node:
            _no_control_characters(v, key, source, env_keys)
    elif isinstance(node, str) and (found := _CONTROL.search(node)):
        bad = found.group()
        raise ConfigError(f"{key}: the value holds the control character {bad!r} (from {env_keys.get(key, source)}); "
                          "remove it")


def _section_struct(path: str) -> type[msgspec.Struct] | None:
    node: Any = Config
    for part in filter(None, path.split(".")):
        field = {f.name: f for f in msgspec.structs.fields(node)}.get(part)
        if field is None or not (isinstance(field.type, type) and issubclass(field.type, msgspec.Struct)):
            return None
        node = field.type
    return node


def load(path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Load and validate the configuration.

    ``path`` given: that file must exist. ``None``: ``$ASSISTANT_CONFIG``, else
    ``/etc/assistant/assistant.toml`` when it exists, else built-in defaults.
    """
    environ = os.environ if environ is None else environ
    explicit = path is not None or bool(environ.get("ASSISTANT_CONFIG"))
    file = Path(path if path is not None else environ.get("ASSISTANT_CONFIG") or DEFAULT_PATH)
    data: dict[str, Any] = {}
    source = "built-in defaults"
    if explicit or file.exists():
        source = str(file)
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {file} does not exist; create it from examples/assistant.toml or pass --config") from None
        except (PermissionError, IsADirectoryError, UnicodeDecodeError, OSError) as exc:
            raise ConfigError(f"config file {file} is unreadable ({exc.__class__.__name__}: {exc}); check its path and permissions") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {file} is not valid TOML: {exc}; fix the syntax there") from None
    env_keys: dict[str, str] = {}
    for key_path, (name, value) in _env_overrides(environ).items():
        _merge(data, key_path, value, name)
        env_keys[".".join(key_path)] = f"environment variable {name}"
    _no_control_characters(data, "", source, env_keys)
    try:
        return msgspec.convert(data, Config, strict=False)
    except msgspec.ValidationError as exc:
        raise ConfigError(_explain(exc, source, env_keys)) from None
