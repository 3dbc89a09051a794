"""The servers' listening socket, bound before any model loads.

``uvicorn.run(host, port)`` binds only once the app is built, so a port already in use
(or out of reach) was found after loading the models, and reported as uvicorn's own
log line and exit status. Binding first makes it one line naming the address, at once;
uvicorn then serves on the socket it is given. Port 0 binds a free port at once, so a
caller that needs any free port (a test, a second server on one machine) never races
another process for one it picked earlier; the servers print the port they got.
"""

from __future__ import annotations

import socket
from typing import Any

from slimrec.errors import ConfigError


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host``:``port`` (not yet listening), or a one-line error."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror as e:
        raise ConfigError(f"unknown host {host!r} ({e.strerror})", fix="check --host") from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart reuses the port
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port} ({e.strerror or e})",
            fix="choose another --port, or stop the process that holds it",
        ) from None
    return sock


def bound_port(sock: socket.socket) -> int:
    """The port ``sock`` is bound to (the free one the system chose for port 0)."""
    return int(sock.getsockname()[1])


def serve_on(app: Any, sock: socket.socket) -> None:
    """Serve ``app`` with uvicorn on the bound ``sock`` until interrupted."""
    import uvicorn

    uvicorn.Server(uvicorn.Config(app, log_level="warning")).run(sockets=[sock])
