"""Loaded by every Python program the process kubelet runs (its directory is put on PYTHONPATH).

Pods share the host's network namespace; each has its own local address instead. A server
that binds the wildcard address would take the port on every address, so binds to the wildcard
are redirected to the pod's address, which is what a server in a real pod network would get.
"""

import os
import socket

_POD_IP = os.environ.get("PROCESS_KUBELET_POD_IP", "")
_WILDCARDS = ("", "0.0.0.0", "::", "::0")

if _POD_IP:
    _bind = socket.socket.bind

    def _pod_bind(self, address):  # type: ignore[no-untyped-def]
        if isinstance(address, tuple) and address and address[0] in _WILDCARDS:
            host = _POD_IP if self.family == socket.AF_INET else "::ffff:" + _POD_IP
            address = (host,) + tuple(address[1:])
        return _bind(self, address)

    socket.socket.bind = _pod_bind  # type: ignore[method-assign]
