"""The reconcile logic as plain functions: observed state in, actions and a new status out.

Everything here is pure (no I/O, no clock): `decide.decide` is the whole state machine, fed by
the Kopf layer with the resource, its child objects, live measurements and the time.
"""
