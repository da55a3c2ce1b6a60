"""Pure FAISS: index types and their typed configs, build, search, save/load, evaluation, tuning.

Knows nothing of Kubernetes or HTTP; the build Job, the serving pods and the tuner stand on it.
"""
