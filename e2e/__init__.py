"""End-to-end scenarios and the local control plane they can run against."""
