"""How the memory-pressure scenario tells an aborted close from a graceful
one (it closes again when tcp_orphan_cache was late): the peer's socket
goes to CLOSE on an RST and stays in CLOSE_WAIT after a FIN. Real sockets
on loopback, no root needed."""

import socket
import struct

from rsttrace.lab.catalogue.timers import _reset_by_peer


def _connection():
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)
    cli = socket.create_connection(lst.getsockname())
    srv, _ = lst.accept()
    lst.close()
    return cli, srv


def test_an_aborted_close_is_seen_as_reset():
    cli, srv = _connection()
    # SO_LINGER {1, 0}: close() sends an RST, as tcp_check_oom()'s abort
    cli.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    cli.close()
    try:
        assert _reset_by_peer(srv) is True
    finally:
        srv.close()


def test_a_graceful_close_is_not():
    cli, srv = _connection()
    cli.close()             # FIN: srv stays in CLOSE_WAIT
    try:
        assert _reset_by_peer(srv, timeout=0.5) is False
    finally:
        srv.close()
