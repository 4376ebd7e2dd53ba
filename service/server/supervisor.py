"""uvicorn's supervisor of several workers, closing its copy of the listening socket on SIGTERM.

The supervisor binds the socket and hands a copy to each worker. On SIGTERM it forwards the signal
and waits for the workers, holding its own copy open all along: once the workers stop accepting (at
the end of DRAIN_SECONDS, while in-flight requests finish), the socket still listens, the kernel
still completes new connections into its queue, and nobody accepts them. They hung until the last
worker exited and then failed (measured: 4.2 s for one request, then a reset). Closing the
supervisor's copy at SIGTERM leaves the socket open only in the workers: while they serve, new
connections are served; once the last one stops accepting, the socket is closed and a new
connection is refused at once.
"""

from __future__ import annotations

import logging

from uvicorn.supervisors.multiprocess import Multiprocess

log = logging.getLogger("uvicorn.error")


class ClosingMultiprocess(Multiprocess):
    def _close_sockets(self) -> None:
        for sock in self.sockets:
            sock.close()

    def handle_term(self) -> None:
        self._close_sockets()
        super().handle_term()

    def handle_int(self) -> None:
        self._close_sockets()
        super().handle_int()
