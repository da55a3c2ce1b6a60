"""The controller's I/O edge: everything that talks to the API server, the pods or the clock.

Kopf handlers turn watch events into triggers; one reconcile loop per FaissIndex observes it
afresh, asks `controller.decision.decide` for a plan and applies it; the prober measures the
candidate's pods live; the operator serves its own metrics. Only this folder imports kopf or a
Kubernetes client.
"""
