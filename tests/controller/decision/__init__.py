"""Tests of controller/decision: the pure reconcile logic, no cluster, no clock, no network."""
