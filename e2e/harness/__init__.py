"""A real Kubernetes control plane on this machine, with pods run as local processes.

kind needs Docker and no registry here ships kube-apiserver, so `hack/build-k8s.sh` builds the real
programs from Go modules and this package runs them: etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, and a node agent in Python (`kubelet/`) that runs each
pod bound to it as processes in a private mount namespace. `python -m e2e.harness up|down|status`
drives it; tests use `cluster.Cluster` directly.
"""
