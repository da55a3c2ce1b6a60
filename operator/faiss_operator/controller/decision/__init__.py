"""The reconcile logic as plain functions: observed state in, actions and a new status out.

Everything here is pure (no I/O, no clock, no Kopf, no Kubernetes client, no FAISS or numpy):
`decide.decide` is the whole state machine, fed by `controller.runtime` with the resource, its
child objects, live measurements and the time. .importlinter and
tests/controller/decision/test_purity.py keep it so for every file added here.
"""
