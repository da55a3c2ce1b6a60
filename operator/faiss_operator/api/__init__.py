"""The FaissIndex resource as users write and read it: pydantic models of spec and status.

camelCase on the wire (the Kubernetes convention), snake_case in Python; `naming` holds the one
mapping between the two. The CRD in crds/ is generated from these models by `crd`.
"""
