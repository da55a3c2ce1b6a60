"""Resolve the effective index configuration from its layers, and say where each value came from.

Highest first: explicit arguments > environment variables > a YAML file > the type's defaults.
The environment speaks for a whole deployment (the operator's or a pod's), so a variable names a
key of whichever type is chosen and is skipped when that type has no such key; an explicit
argument or a file key that the type lacks is an error. The environment and the file follow one
rule of their own (`check_environment`): where they name an index type, each of their keys must be
a parameter of it (`FAISS_INDEX_TYPE=HNSW` with `FAISS_NLIST` is refused, as a file with
`index_type: HNSW` and `nlist` is), and a `FAISS_CONFIG_<KEY>` that no index type has
(`FAISS_CONFIG_EFSEARCH`) is refused as an unknown file key is. Other unknown `FAISS_*`
variables are reported, not refused (`EnvironmentCheck.warnings`). YAML files come in the seed's shape
(`faiss: {index_type, device, config: {...}}`) and the older v0.8 shape with `nlist`/`nprobe`
directly under `faiss:` or at the top of the file.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from faiss_operator.index import config as index_config

ENV_INDEX_TYPE = "FAISS_INDEX_TYPE"
ENV_CONFIG_FILE = "FAISS_CONFIG_FILE"
ENV_CONFIG_PREFIX = "FAISS_CONFIG_"
# The seed's first variables, kept for deployments that still set them.
LEGACY_ENV_KEYS = {"FAISS_NLIST": "nlist", "FAISS_NPROBE": "nprobe"}
LEGACY_FILE_KEYS = ("nlist", "nprobe")
SUPPORTED_DEVICES = ("cpu",)
# FAISS_* variables of the project that are not index settings (the operator's image, the pods'
# claim root, the build script's cache): never reported as unknown.
OTHER_PROJECT_VARIABLES = ("FAISS_OPERATOR_", "FAISS_PVC_ROOT", "FAISS_S3_")

SOURCE_ARGUMENT = "argument"
SOURCE_DEFAULT = "default"


@dataclasses.dataclass(frozen=True)
class ResolvedConfig:
    """The effective index type and config, and the layer that supplied each value."""

    index_type: index_config.IndexTypeName
    config: index_config.IndexConfig
    sources: Mapping[str, str]

    def describe(self) -> str:
        lines = [f"index_type = {self.index_type}  ({self.sources['index_type']})"]
        values = self.config.model_dump(mode="json")
        for key in index_config.config_keys(self.index_type):
            lines.append(f"{key} = {values[key]}  ({self.sources[key]})")
        return "\n".join(lines)


@dataclasses.dataclass(frozen=True)
class _FileLayer:
    path: str
    index_type: str | None
    values: dict[str, Any]


def resolve_config(
    *,
    index_type: str | None = None,
    config: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
    by_alias: bool = False,
) -> ResolvedConfig:
    """The effective config; `env` defaults to os.environ, `config_file` to $FAISS_CONFIG_FILE.

    Raises ConfigError naming each offending config key (by its camelCase alias on the resource
    when `by_alias`) and the layer that supplied it."""
    environment = os.environ if env is None else env
    refused = check_environment(environment).errors
    if refused:
        raise index_config.ConfigError("; ".join(refused))
    file_path = config_file if config_file is not None else environment.get(ENV_CONFIG_FILE)
    file_layer = _read_config_file(Path(file_path)) if file_path else None

    chosen_type, type_source = _choose_index_type(index_type, environment, file_layer)
    valid_keys = set(index_config.config_keys(chosen_type))

    merged: dict[str, Any] = {}
    sources: dict[str, str] = {"index_type": type_source}
    if file_layer is not None and file_layer.index_type in (None, chosen_type):
        for key, value in file_layer.values.items():
            merged[key] = value
            sources[key] = f"file:{file_layer.path}"
    for key, (value, variable) in _environment_values(environment, valid_keys).items():
        merged[key] = value
        sources[key] = f"env:{variable}"
    for key, value in (config or {}).items():
        merged[key] = value
        sources[key] = SOURCE_ARGUMENT

    try:
        parsed = index_config.parse_config(chosen_type, merged, by_alias=by_alias)
    except index_config.ConfigError as error:
        raise index_config.ConfigError(_with_sources(str(error), merged, sources, by_alias=by_alias)) from None
    for key in valid_keys:
        sources.setdefault(key, SOURCE_DEFAULT)
    return ResolvedConfig(index_type=chosen_type, config=parsed, sources=sources)


@dataclasses.dataclass(frozen=True)
class EnvironmentCheck:
    """What `check_environment` found: errors refuse the environment, warnings are reported."""

    errors: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()


def check_environment(environment: Mapping[str, str]) -> EnvironmentCheck:
    """The index variables of `environment` judged by the config file's rule (module docstring)."""
    all_keys = {key for name in index_config.INDEX_TYPES for key in index_config.config_keys(name)}
    declared = environment.get(ENV_INDEX_TYPE) or None
    own_keys = set(index_config.config_keys(declared)) if declared in index_config.INDEX_TYPES else None
    errors: list[str] = []
    warnings: list[str] = []
    for variable in sorted(environment):
        if not variable.startswith("FAISS_") or variable in (ENV_INDEX_TYPE, ENV_CONFIG_FILE):
            continue
        if variable.startswith(OTHER_PROJECT_VARIABLES):
            continue
        key = LEGACY_ENV_KEYS.get(variable)
        if key is None and variable.startswith(ENV_CONFIG_PREFIX):
            key = variable.removeprefix(ENV_CONFIG_PREFIX).lower()
            if key not in all_keys:
                known = ", ".join(ENV_CONFIG_PREFIX + k.upper() for k in sorted(all_keys))
                errors.append(f"{variable}: {key!r} is not a parameter of any index type; known: {known}")
                continue
        if key is None:
            warnings.append(f"{variable}: not a variable faiss-operator reads (ignored)")
            continue
        if own_keys is not None and key not in own_keys:
            owners = [name for name in index_config.INDEX_TYPES if key in index_config.config_keys(name)]
            errors.append(
                f"{variable}: {key} is not a parameter of {ENV_INDEX_TYPE}={declared} "
                f"(it belongs to {' and '.join(owners)}); unset it or change {ENV_INDEX_TYPE}"
            )
    return EnvironmentCheck(errors=tuple(errors), warnings=tuple(warnings))


def _with_sources(
    message: str, merged: Mapping[str, Any], sources: Mapping[str, str], *, by_alias: bool
) -> str:
    """The error message, plus the layer that supplied each field it names (unless an argument)."""
    labels = {key: index_config.label(key, by_alias=by_alias) for key in merged}
    named = [
        f"{labels[key]} from {sources[key]}"
        for key in merged
        if sources.get(key, SOURCE_ARGUMENT) != SOURCE_ARGUMENT
        and (f"config.{labels[key]}:" in message or f"{labels[key]} (" in message)
    ]
    return f"{message} [{'; '.join(named)}]" if named else message


def _choose_index_type(
    argument: str | None, environment: Mapping[str, str], file_layer: _FileLayer | None
) -> tuple[index_config.IndexTypeName, str]:
    candidates = [
        (argument, SOURCE_ARGUMENT),
        (environment.get(ENV_INDEX_TYPE) or None, f"env:{ENV_INDEX_TYPE}"),
        (file_layer.index_type if file_layer else None, f"file:{file_layer.path}" if file_layer else ""),
    ]
    for value, source in candidates:
        if value is not None:
            try:
                index_config.config_model_for(value)
            except index_config.ConfigError as error:
                raise index_config.ConfigError(
                    error.args[0] if source == SOURCE_ARGUMENT else f"{error.args[0]} [from {source}]"
                ) from None
            return value, source  # type: ignore[return-value]
    return index_config.DEFAULT_INDEX_TYPE, SOURCE_DEFAULT


def _environment_values(environment: Mapping[str, str], valid_keys: set[str]) -> dict[str, tuple[Any, str]]:
    found: dict[str, tuple[Any, str]] = {}
    for variable, key in LEGACY_ENV_KEYS.items():
        if variable in environment and key in valid_keys:
            found[key] = (_parse_env_value(variable, environment[variable]), variable)
    for key in sorted(valid_keys):
        variable = ENV_CONFIG_PREFIX + key.upper()
        if variable in environment:
            found[key] = (_parse_env_value(variable, environment[variable]), variable)
    return found


def _parse_env_value(variable: str, raw: str) -> Any:
    text = raw.strip()
    if text == "":
        raise index_config.ConfigError(f"{variable}: empty value")
    try:
        return int(text)
    except ValueError:
        return text


def _read_config_file(path: Path) -> _FileLayer:
    try:
        document = yaml.safe_load(path.read_text())
    except OSError as error:
        raise index_config.ConfigError(f"config file {path}: cannot read: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise index_config.ConfigError(f"config file {path}: not valid YAML: {error}") from None
    if not isinstance(document, dict):
        raise index_config.ConfigError(f"config file {path}: expected a mapping with a 'faiss' key")
    section = document.get("faiss", {})
    if not isinstance(section, dict):
        raise index_config.ConfigError(f"config file {path}: 'faiss' must be a mapping")

    device = section.get("device", "cpu")
    if device not in SUPPORTED_DEVICES:
        raise index_config.ConfigError(
            f"config file {path}: faiss.device {device!r} is not supported; this build runs on: cpu"
        )
    values = section.get("config") or {}
    if not isinstance(values, dict):
        raise index_config.ConfigError(f"config file {path}: faiss.config must be a mapping")
    values = dict(values)
    for key in LEGACY_FILE_KEYS:
        for layer in (document, section):
            if key in layer and key not in values:
                values[key] = layer[key]
    index_type = section.get("index_type")
    if index_type is None and any(key in values for key in LEGACY_FILE_KEYS):
        index_type = "IVF"  # the v0.8 shape only ever described IVF indexes
    if index_type is not None and not isinstance(index_type, str):
        raise index_config.ConfigError(f"config file {path}: faiss.index_type must be a string")
    return _FileLayer(path=str(path), index_type=index_type, values=values)
