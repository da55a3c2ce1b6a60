"""Tests of controller/runtime: the Kopf handlers, the reconcile loop, the applier, the prober."""
