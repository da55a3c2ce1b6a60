"""The controller's tests run the pure decision only: no cluster, no clock, no network."""
