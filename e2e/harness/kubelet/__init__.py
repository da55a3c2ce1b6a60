"""The process kubelet: a node agent that runs the pods bound to its Node as local processes.

No container runtime or image registry is available, so each container's command runs from the
host's environment (the repository's .venv first on PATH) inside a private mount namespace whose
root is a copy-on-write overlay of the host, with the pod's volumes mounted at their mountPath.
Each pod gets its own local address, so many pods can listen on the same port. The pod status
it reports follows the real kubelet's: phases, container states, probes, restarts, termination
messages, graceful deletion.
"""
