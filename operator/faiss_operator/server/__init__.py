"""The serving pod's program: load and verify an artifact, then answer searches over HTTP.

`command` is the `faiss-operator serve` entry point, `app` the HTTP routes, `service` the
readiness state and the search path, `requests` the request validation, `batching` the
micro-batcher that spreads concurrent queries over the cores, `metrics` the Prometheus metrics.
"""
