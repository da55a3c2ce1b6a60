"""faiss-operator: owns the whole life of a FAISS vector index on Kubernetes."""

__version__ = "0.1.0"
