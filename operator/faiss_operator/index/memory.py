"""The memory an index will need, from its config, before it is built.

The operator sizes the serving pods' memory requests and the build Job from this, and the README
documents the same formulas; a test keeps them within a few percent of FAISS's serialized size.
"""

from __future__ import annotations

from faiss_operator.index import config as index_config

ID_BYTES = 8
# Per vector in an HNSW graph: the offset into the link table (8) and the level (4).
HNSW_BOOKKEEPING_BYTES = 12
LINK_BYTES = 4
PQ_CENTROIDS = 256


def hnsw_link_bytes(m: int) -> float:
    """Links per vector: 2*m neighbours on level 0, m per upper level, 1/m of vectors per level."""
    # A vector reaches level l >= 1 with probability m**-l; each level it is on costs m links.
    upper_levels = m / (m - 1) if m > 1 else 0.0
    return LINK_BYTES * (2 * m + upper_levels)


def estimate_bytes(config: index_config.IndexConfig, *, dimension: int, num_vectors: int) -> int:
    """Serialized (= resident) bytes of the index for `num_vectors` vectors of `dimension`."""
    d, n = dimension, num_vectors
    if isinstance(config, index_config.FlatConfig):
        return 4 * d * n
    if isinstance(config, index_config.IVFPQConfig):
        nlist = index_config.effective_nlist(config, n)
        code = index_config.effective_m_pq(config, dimension) * config.nbits / 8
        return int(n * (code + ID_BYTES) + 4 * d * nlist + 4 * d * 2**config.nbits)
    if isinstance(config, index_config.IVFConfig):
        nlist = index_config.effective_nlist(config, n)
        return int(n * (4 * d + ID_BYTES) + 4 * d * nlist)
    if isinstance(config, index_config.HNSWConfig):
        return int(n * (4 * d + hnsw_link_bytes(config.m) + HNSW_BOOKKEEPING_BYTES))
    links = hnsw_link_bytes(config.m_hnsw) + HNSW_BOOKKEEPING_BYTES
    if config.encoding is index_config.ScalarCodec.PQ:
        rotation = 4 * d * d
        codebooks = 4 * d * PQ_CENTROIDS
        return int(n * (index_config.effective_m_pq(config, dimension) + links) + rotation + codebooks)
    bits = int(config.encoding.value.removeprefix("SQ"))
    # The scalar quantizer keeps a min and a range per dimension.
    return int(n * (d * bits / 8 + links) + 2 * 4 * d)
