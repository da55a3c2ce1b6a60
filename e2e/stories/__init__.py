"""What the user stories of issue 9 need beside the cluster: vectors in a claim, a FaissIndex
watched through its status and children, and a client that searches a Service without pause.

Each helper talks to whatever cluster its client or kubeconfig points at (the local control plane
in tests/integration, or kind), never to the harness's internals.
"""
