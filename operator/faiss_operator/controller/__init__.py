"""The operator's controller, in two floors.

`decision/` is the reconcile logic as plain functions: the resource, its observed children,
live measurements and the time in; a `Plan` of actions and a new status out. No I/O, no clock.
`runtime/` is the I/O edge that feeds it and carries its plans out: the Kopf handlers, the
per-index reconcile loop, the reads and writes against the API server, the live prober and the
operator's metrics. `runtime` imports `decision`, never the reverse (.importlinter).
"""
