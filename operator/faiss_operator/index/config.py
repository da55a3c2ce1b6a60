"""Typed configuration of each index type, with its defaults and limits.

One pydantic model per index type, so that a key that belongs to another type, an unknown key or
an out-of-range value is refused with an error that names the field. The same models back the
Python API, the build Job's flags and the FaissIndex resource: snake_case in Python and in the
YAML file (`parse_config`), camelCase on the resource by alias (`parse_wire_config`, `to_wire`),
so the resource's spec and status hold these very models, with no conversion between the two.
Defaults that should scale with the data (nlist, training sample size) are resolved against the
vector count by `effective_nlist` and `training_sample_size`, following the FAISS wiki guidelines.
"""

from __future__ import annotations

import enum
import math
from typing import Annotated, Any, ClassVar, Literal, TypeAlias

import pydantic
import pydantic.alias_generators

IndexTypeName: TypeAlias = Literal["Flat", "IVF", "IVFPQ", "HNSW", "OPQ+HNSW"]
INDEX_TYPES: tuple[IndexTypeName, ...] = ("Flat", "IVF", "IVFPQ", "HNSW", "OPQ+HNSW")
DEFAULT_INDEX_TYPE: IndexTypeName = "HNSW"

# FAISS wiki ("Guidelines to choose an index"): k-means wants at least 39 training points per
# centroid and gains little beyond 256 per centroid.
MIN_POINTS_PER_CENTROID = 39
MAX_POINTS_PER_CENTROID = 256
# nlist ~ 4*sqrt(N) for IVF, capped at the wiki's 65536 cells for CPU indexes.
NLIST_PER_SQRT_N = 4
MAX_AUTO_NLIST = 65536


class Metric(str, enum.Enum):
    """Distance between vectors; cosine similarity is InnerProduct on normalized vectors."""

    L2 = "L2"
    INNER_PRODUCT = "InnerProduct"


class ScalarCodec(str, enum.Enum):
    """Vector encodings stored inside an HNSW graph by the OPQ+HNSW type."""

    SQ4 = "SQ4"
    SQ6 = "SQ6"
    SQ8 = "SQ8"
    PQ = "PQ"


# How a validator names a field in its message: by its Python name, or by its camelCase alias
# when the config is read from the resource (`parse_wire_config` passes this in the context).
_BY_ALIAS = "by_alias"


class _IndexConfig(pydantic.BaseModel):
    # Both names are accepted by the model; each reader picks one (parse_config: the Python name
    # only, parse_wire_config: the alias only), so neither form passes where the other belongs.
    model_config = pydantic.ConfigDict(
        extra="forbid",
        frozen=True,
        alias_generator=pydantic.alias_generators.to_camel,
        validate_by_name=True,
        validate_by_alias=True,
    )

    # Search-time parameters: changing only these never requires a rebuild.
    SEARCH_TIME_FIELDS: ClassVar[frozenset[str]] = frozenset()

    @pydantic.field_validator("*", mode="before")
    @classmethod
    def _no_booleans(cls, value: Any, info: pydantic.ValidationInfo) -> Any:
        # pydantic's lax mode would read `true` as 1; a boolean is never a valid parameter here.
        if isinstance(value, bool):
            raise ValueError(f"expected a number, got the boolean {value!r}")
        return value

    def build_fields(self) -> dict[str, Any]:
        """The fields that shape the built index (everything but search-time parameters)."""
        return {k: v for k, v in self.model_dump(mode="json").items() if k not in self.SEARCH_TIME_FIELDS}

    def search_fields(self) -> dict[str, Any]:
        return {k: v for k, v in self.model_dump(mode="json").items() if k in self.SEARCH_TIME_FIELDS}

    def to_wire(self, *, explicit_only: bool = False) -> dict[str, Any]:
        """The camelCase form the resource shows: every parameter but unset optional ones (the
        effective config, status.revisions[].config), or only those given when it was read (the
        config as written, spec.config). The index type is the resource's sibling field."""
        return self.model_dump(
            mode="json", by_alias=True, exclude={"index_type"}, exclude_none=True, exclude_unset=explicit_only
        )

    def explicit_fields(self) -> dict[str, Any]:
        """The parameters given when the config was read (snake_case), defaults left out: what
        outranks the environment when settings are layered (index/settings.py)."""
        return self.model_dump(mode="json", exclude_unset=True, exclude={"index_type"})


class FlatConfig(_IndexConfig):
    """Exact search; no parameters. Memory: 4*d bytes per vector."""

    index_type: Literal["Flat"] = "Flat"


class IVFConfig(_IndexConfig):
    """IVF-Flat. Memory: 4*d + 8 (the id in its inverted list) bytes per vector, plus 4*d*nlist for
    the centroids. nlist defaults to min(4*sqrt(N), N/39, 65536); training uses 256*nlist vectors.
    nprobe above nlist is not an error: a search probes min(nprobe, nlist) lists
    (index/search_params.py), so the default 10 fits any nlist the build chooses."""

    index_type: Literal["IVF"] = "IVF"
    nlist: Annotated[int | None, pydantic.Field(ge=1, le=1 << 20)] = None
    nprobe: Annotated[int, pydantic.Field(ge=1, le=1 << 20)] = 10
    train_size: Annotated[int | None, pydantic.Field(ge=1)] = None

    SEARCH_TIME_FIELDS: ClassVar[frozenset[str]] = frozenset({"nprobe"})

    @pydantic.model_validator(mode="after")
    def _default_nprobe_follows_an_explicit_nlist(self) -> IVFConfig:
        # The rule of index/search_params.py applied to the default where nlist is already
        # known: the default nprobe (10) with an explicit nlist of 4 is 4. It stays a default
        # (not in model_fields_set), so a layer below (FAISS_NPROBE) still fills it.
        if "nprobe" not in self.model_fields_set and self.nlist is not None:
            object.__setattr__(self, "nprobe", effective_nprobe(self.nprobe, self.nlist))
        return self


class IVFPQConfig(IVFConfig):
    """IVF with product-quantized residuals.

    Memory: m_pq*nbits/8 bytes of code + 8 bytes of id per vector, plus the coarse centroids
    (4*d*nlist) and the PQ codebooks (4*d*2**nbits). m_pq must divide the dimension; unset, it is
    chosen from the dimension by `default_m_pq` (48 at d=384 and 768, 32 at 64, 25 at 100, 40 at 1000).
    """

    index_type: Literal["IVFPQ"] = "IVFPQ"  # type: ignore[assignment]
    m_pq: Annotated[int | None, pydantic.Field(ge=1, le=1024)] = None
    nbits: Annotated[int, pydantic.Field(ge=4, le=12)] = 8


class HNSWConfig(_IndexConfig):
    """HNSW graph over full vectors.

    Memory per vector: 4*d of vector + 8*m of level-0 links (2*m neighbours of 4 bytes) + about
    4*m/(m-1) of upper-level links + 12 of bookkeeping (offset and level); 1,808 B at d=384, m=32.
    """

    index_type: Literal["HNSW"] = "HNSW"
    m: Annotated[int, pydantic.Field(ge=2, le=256)] = 32
    ef_construction: Annotated[int, pydantic.Field(ge=1, le=4096)] = 200
    ef_search: Annotated[int, pydantic.Field(ge=1, le=32768)] = 64

    SEARCH_TIME_FIELDS: ClassVar[frozenset[str]] = frozenset({"ef_search"})


class OPQHNSWConfig(_IndexConfig):
    """The memory-efficient type: compressed codes inside an HNSW graph.

    encoding SQ4/SQ6/SQ8 (default SQ6): a scalar quantizer of 4, 6 or 8 bits per dimension inside
    an HNSW graph (FAISS "HNSW{m_hnsw}_SQ{b}"); memory per vector d*b/8 of code + 8*m_hnsw of
    level-0 links + about 4*m_hnsw/(m_hnsw-1) + 12; 432 B at d=384, SQ6, m_hnsw=16 (4.2x less
    than HNSW32) with recall@10 ~0.96 on sentence embeddings.
    encoding PQ: the seed's construction — an OPQ rotation trained for `n_subquantizers` blocks,
    then PQ codes of `m_pq` bytes inside the graph (FAISS "OPQ{n},HNSW{m_hnsw}_PQ{m_pq}"); memory
    m_pq + the same links per vector, plus 4*d*d (rotation) and 4*d*256 (codebooks) in total.
    m_pq unset is chosen from the dimension by `default_m_pq` (64 at d=384 and 768, 50 at 100 and 1000).
    Smaller, but PQ codes of 32-96 bytes stay well below 0.95 recall@10 on 384-d embeddings.
    """

    index_type: Literal["OPQ+HNSW"] = "OPQ+HNSW"
    encoding: ScalarCodec = ScalarCodec.SQ6
    m_pq: Annotated[int | None, pydantic.Field(ge=1, le=1024)] = None
    n_subquantizers: Annotated[int | None, pydantic.Field(ge=1, le=1024)] = None
    m_hnsw: Annotated[int, pydantic.Field(ge=2, le=256)] = 16
    ef_construction: Annotated[int, pydantic.Field(ge=1, le=4096)] = 200
    ef_search: Annotated[int, pydantic.Field(ge=1, le=32768)] = 128
    train_size: Annotated[int | None, pydantic.Field(ge=1)] = None

    SEARCH_TIME_FIELDS: ClassVar[frozenset[str]] = frozenset({"ef_search"})
    PQ_FIELDS: ClassVar[tuple[str, ...]] = ("m_pq", "n_subquantizers")

    @pydantic.model_validator(mode="after")
    def _pq_keys_ask_for_pq(self) -> OPQHNSWConfig:
        # The seed's keys m_pq and n_subquantizers mean OPQ + PQ codes: given without an
        # encoding, they choose it rather than being ignored by the default SQ6. The encoding so
        # chosen stays a default (not in model_fields_set), as the one a layer below would set.
        if "encoding" not in self.model_fields_set:
            if any(getattr(self, key) is not None for key in self.PQ_FIELDS):
                object.__setattr__(self, "encoding", ScalarCodec.PQ)
        return self

    @pydantic.model_validator(mode="after")
    def _pq_keys_need_pq(self, info: pydantic.ValidationInfo) -> OPQHNSWConfig:
        unused = [key for key in self.PQ_FIELDS if getattr(self, key) is not None]
        if unused and self.encoding is not ScalarCodec.PQ:
            name = label(unused[0], by_alias=bool(info.context and info.context.get(_BY_ALIAS)))
            raise ValueError(
                f"config.{name}: used only with encoding PQ (OPQ rotation + PQ codes), but the encoding "
                f"is {self.encoding.value}; set encoding PQ, or remove config.{name}"
            )
        return self


IndexConfig: TypeAlias = FlatConfig | IVFConfig | IVFPQConfig | HNSWConfig | OPQHNSWConfig
# The same union for isinstance checks.
CONFIG_TYPES = (FlatConfig, IVFConfig, IVFPQConfig, HNSWConfig, OPQHNSWConfig)

CONFIG_MODELS: dict[str, type[_IndexConfig]] = {
    "Flat": FlatConfig,
    "IVF": IVFConfig,
    "IVFPQ": IVFPQConfig,
    "HNSW": HNSWConfig,
    "OPQ+HNSW": OPQHNSWConfig,
}


class ConfigError(ValueError):
    """A configuration that cannot describe an index; the message names the field."""


def config_model_for(index_type: str) -> type[_IndexConfig]:
    if isinstance(index_type, str) and index_type in CONFIG_MODELS:
        return CONFIG_MODELS[index_type]
    else:
        raise ConfigError(
            f"index_type: unknown index type {index_type!r}; expected one of {', '.join(INDEX_TYPES)}"
        )


def config_keys(index_type: str) -> list[str]:
    """The snake_case keys a config of `index_type` accepts."""
    return sorted(k for k in config_model_for(index_type).model_fields if k != "index_type")


def all_config_keys() -> list[str]:
    """The snake_case keys of every index type, each once."""
    return sorted({key for name in INDEX_TYPES for key in config_keys(name)})


def label(key: str, *, by_alias: bool) -> str:
    """A config key as a message names it: snake_case, or its camelCase alias on the resource."""
    return pydantic.alias_generators.to_camel(key) if by_alias else key


def wire_config_keys(index_type: str) -> list[str]:
    """The camelCase keys a config of `index_type` accepts on the resource (in snake_case order)."""
    return [label(key, by_alias=True) for key in config_keys(index_type)]


def parse_config(index_type: str, values: dict[str, Any] | None, *, by_alias: bool = False) -> IndexConfig:
    """Validate `values` (snake_case keys) as the config of `index_type`. A ConfigError names the
    offending field: snake_case, or by its camelCase alias on the resource when `by_alias`."""
    model = config_model_for(index_type)
    values = dict(values or {})
    values.pop("index_type", None)
    for key in values:
        owners = [name for name, other in CONFIG_MODELS.items() if key in other.model_fields]
        if key not in model.model_fields and owners:
            valid = wire_config_keys(index_type) if by_alias else config_keys(index_type)
            raise ConfigError(
                f"config.{label(key, by_alias=by_alias)}: not a parameter of index type {index_type!r} "
                f"(it belongs to {' and '.join(owners)}); valid keys: {', '.join(valid)}"
            )
    try:
        return model.model_validate(  # type: ignore[return-value]
            values, by_alias=False, by_name=True, context={_BY_ALIAS: by_alias}
        )
    except pydantic.ValidationError as error:
        raise ConfigError(describe_validation_error(index_type, model, error, by_alias=by_alias)) from None


def parse_wire_config(index_type: str, values: Any, *, dimension: int | None = None) -> IndexConfig:
    """Validate `values`, the resource's camelCase config, as the config of `index_type` (and
    against `dimension` when given). A key that is not a parameter of `index_type` raises
    ConfigError naming it and the valid keys; a bad value raises pydantic's ValidationError at
    its camelCase location, so the resource's validation reports it as any other field."""
    model = config_model_for(index_type)
    valid = wire_config_keys(index_type)
    if isinstance(values, dict):
        for key in values:
            if key not in valid:
                raise ConfigError(
                    f"config.{key}: not a parameter of indexType {index_type}; "
                    f"valid keys: {', '.join(valid) or '(none)'}"
                )
    parsed: IndexConfig = model.model_validate(  # type: ignore[assignment]
        values, by_alias=True, by_name=False, context={_BY_ALIAS: True}
    )
    if dimension is not None:
        check_dimension(parsed, dimension, by_alias=True)
    return parsed


def describe_validation_error(
    index_type: str, model: type[_IndexConfig], error: pydantic.ValidationError, *, by_alias: bool = False
) -> str:
    problems = []
    for item in error.errors():
        location = ".".join(["config", *(label(str(part), by_alias=by_alias) for part in item["loc"])])
        if item["type"] == "extra_forbidden":
            valid = ", ".join(wire_config_keys(index_type) if by_alias else config_keys(index_type))
            problems.append(f"{location}: unknown key for index type {index_type!r}; valid keys: {valid}")
        elif not item["loc"]:
            # A rule across fields: its message names them; the input is the whole config.
            message = item["msg"].removeprefix("Value error, ")
            problems.append(message if message.startswith("config.") else f"{location}: {message}")
        else:
            message = item["msg"].removeprefix("Value error, ")
            problems.append(f"{location}: {message} (got {item.get('input')!r})")
    return "; ".join(problems)


def effective_nlist(config: IVFConfig, num_vectors: int) -> int:
    """nlist as configured, else ~4*sqrt(N) capped so that each cell gets enough training points."""
    if config.nlist is not None:
        return config.nlist
    by_sqrt = NLIST_PER_SQRT_N * int(math.sqrt(max(num_vectors, 1)))
    by_training = max(1, num_vectors // MIN_POINTS_PER_CENTROID)
    return max(1, min(by_sqrt, by_training, MAX_AUTO_NLIST))


def training_sample_size(train_size: int | None, num_centroids: int, num_vectors: int) -> int:
    """Vectors used to train: as configured, else 256 per centroid (the wiki's useful maximum)."""
    wanted = train_size if train_size is not None else MAX_POINTS_PER_CENTROID * num_centroids
    return min(wanted, num_vectors)


# The m_pq aimed at when the config leaves it unset: the seed's defaults at d=384 (48 bytes of
# IVFPQ code, sub-vectors of 8 dimensions; 64 bytes inside the OPQ+HNSW graph).
IVFPQ_M_PQ_TARGET = 48
OPQ_HNSW_M_PQ_TARGET = 64
# A default finer than this many sub-quantizers is too coarse to be useful; see default_m_pq.
MIN_DEFAULT_M_PQ = 8


def default_m_pq(dimension: int, target: int) -> int:
    """A product quantizer's number of sub-quantizers for `dimension` when none is configured.

    FAISS requires m_pq to divide the dimension, so a fixed default (the seed's 48) fails on most
    dimensions. The default is the largest divisor of `dimension` not above `target`; when that is
    below MIN_DEFAULT_M_PQ while the dimension is larger (e.g. a prime dimension, whose only
    divisor below is 1), the smallest divisor above `target` instead. With target 48: 64 -> 32,
    100 -> 25, 384 -> 48, 768 -> 48, 1000 -> 40, 97 -> 97.
    """
    divisors = [m for m in range(1, dimension + 1) if dimension % m == 0]
    below = max(m for m in divisors if m <= target)
    if below < min(MIN_DEFAULT_M_PQ, dimension):
        above = [m for m in divisors if m > target]
        if above:
            return above[0]
    return below


def effective_m_pq(config: IVFPQConfig | OPQHNSWConfig, dimension: int) -> int:
    """m_pq as configured, else `default_m_pq` for the type's target."""
    if config.m_pq is not None:
        return config.m_pq
    target = IVFPQ_M_PQ_TARGET if isinstance(config, IVFPQConfig) else OPQ_HNSW_M_PQ_TARGET
    return default_m_pq(dimension, target)


def check_dimension(config: IndexConfig, dimension: int, *, by_alias: bool = False) -> None:
    """Raise ConfigError when `config` cannot be built at `dimension`: a product quantizer's m_pq
    and an OPQ rotation's n_subquantizers must divide it. Known offline, from the spec alone."""
    if isinstance(config, IVFPQConfig) or (
        isinstance(config, OPQHNSWConfig) and config.encoding is ScalarCodec.PQ
    ):
        m_pq = effective_m_pq(config, dimension)
        require_divisible(dimension, m_pq, label("m_pq", by_alias=by_alias))
        if isinstance(config, OPQHNSWConfig):
            require_divisible(dimension, config.n_subquantizers or m_pq, label("n_subquantizers", by_alias=by_alias))


def require_divisible(dimension: int, parts: int, field: str) -> None:
    if dimension % parts != 0:
        raise ConfigError(
            f"config.{field}: {parts} does not divide the dimension {dimension}; "
            f"choose a divisor of {dimension}"
        )


def effective_nprobe(nprobe: int, nlist: int) -> int:
    """Lists probed per search: nprobe, at most nlist (probing more than exist probes them all,
    as FAISS does); the one rule of index/search_params.py."""
    return min(nprobe, nlist)


def minimum_training_vectors(num_centroids: int) -> int:
    return MIN_POINTS_PER_CENTROID * num_centroids
