"""Exits 1 with a clear message when something already listens on 127.0.0.1:PORT (`make run` checks before it starts
anything, so a second run refuses instead of half-starting)."""

import socket
import sys

port = int(sys.argv[1])
with socket.socket() as probe:
    probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        probe.bind(("127.0.0.1", port))
    except OSError:
        sys.stderr.write(
            f"Port {port} is already in use (another `make run`?). Stop it first, or choose another port: "
            f"make run PORT={port + 1}\n"
        )
        sys.exit(1)
