"""`make demo`: the seed guide's migration played on a local cluster with real embeddings.

`python -m e2e.demo up` starts the local control plane, installs the chart (the operator runs as
its pod), embeds WordNet glosses, loads them into a claim with a Job, and plays IVF -> HNSW ->
OPQ+HNSW -> rollback, printing what `kubectl get faissindex` shows and, at the end, the comparison
table measured in this run. `python -m e2e.demo down` removes what `up` made.
"""
