"""A few RSTs provoked on purpose between two namespaces (rsttrace.netns).

Each function makes one RST happen and returns a Provoked: who sent it, from
which address and port to which. The demo uses them, and so do the tests,
which then check that the tracer saw exactly that.
"""

import select
import socket
import struct
import time

FAMILIES = {4: socket.AF_INET, 6: socket.AF_INET6}


class Provoked:
    """What one provocation did. `sender` is the side ("a" or "b") whose
    kernel sent the RST; addresses/ports are in the RST's direction."""

    def __init__(self, name, family, sender, saddr, sport, daddr, dport,
                 error=None):
        self.name = name
        self.family = family
        self.sender = sender
        self.receiver = "b" if sender == "a" else "a"
        self.saddr, self.sport = saddr, sport
        self.daddr, self.dport = daddr, dport
        self.error = error          # what the application saw, if anything

    def __repr__(self):
        return "<%s IPv%d %s:%d -> %s:%d>" % (
            self.name, self.family, self.saddr, self.sport, self.daddr,
            self.dport)


def free_port(pair, side, family):
    s = pair.socket(side, FAMILIES[family])
    s.bind((pair.addr(side, FAMILIES[family]), 0))
    port = s.getsockname()[1]
    s.close()
    return port


def connected(pair, family, port=None, keep_listener=False):
    """(client in a, accepted server socket in b) over the veth pair. The
    accepted socket is closed with the pair, not when it goes out of
    scope (which would send a FIN mid-scenario)."""
    fam = FAMILIES[family]
    lst = pair.socket("b", fam)
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind((pair.addr("b", fam), port or 0))
    lst.listen(8)
    cli = pair.socket("a", fam)
    cli.settimeout(5)
    cli.connect((pair.addr("b", fam), lst.getsockname()[1]))
    srv, _ = lst.accept()
    pair.keep(srv)
    if not keep_listener:
        lst.close()
    return cli, srv


def wait_readable(sock, timeout=5.0):
    if not select.select([sock], [], [], timeout)[0]:
        raise TimeoutError("no data arrived within %.0fs" % timeout)


def _ends(cli, srv):
    c = cli.getsockname()[:2]
    s = cli.getpeername()[:2]
    return c, s


def recv_error(sock):
    """Read until the connection ends; the error the application sees."""
    sock.settimeout(5)
    try:
        while sock.recv(4096):
            pass
    except OSError as e:
        return e.strerror or str(e)
    return None


def closed_port(pair, family=4):
    """A SYN to a port nothing listens on: b answers with an RST, a's
    connect() fails with ECONNREFUSED."""
    fam = FAMILIES[family]
    port = free_port(pair, "b", family)
    cli = pair.socket("a", fam)
    cli.settimeout(5)
    error = None
    try:
        cli.connect((pair.addr("b", fam), port))
    except OSError as e:
        error = e.strerror
    local = cli.getsockname()[:2]
    cli.close()
    return Provoked("closed-port", family, "b", pair.addr("b", fam), port,
                    local[0], local[1], error)


def linger_zero(pair, family=4):
    """a closes an established connection with SO_LINGER {1, 0}: its kernel
    aborts with an RST instead of a FIN (nginx reset_timedout_connection)."""
    cli, srv = connected(pair, family)
    (caddr, cport), (saddr, sport) = _ends(cli, srv)
    cli.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                   struct.pack("ii", 1, 0))
    cli.close()
    error = recv_error(srv)
    srv.close()
    return Provoked("linger-zero", family, "a", caddr, cport, saddr, sport,
                    error)


def unread_data_close(pair, family=4):
    """a closes while data it never read sits in its receive queue: the
    kernel sends an RST (RFC 2525) and drops the data."""
    cli, srv = connected(pair, family)
    (caddr, cport), (saddr, sport) = _ends(cli, srv)
    srv.sendall(b"x" * 1000)
    wait_readable(cli)
    cli.close()
    error = recv_error(srv)
    srv.close()
    return Provoked("unread-data-close", family, "a", caddr, cport, saddr,
                    sport, error)


def data_after_shutdown(pair):
    """a shuts down both directions (no close), b writes: a's kernel aborts
    its own socket (tcp_reset, no RST arrives) and answers with an RST.
    What a's application then reads."""
    cli, srv = connected(pair, 4)
    cli.shutdown(socket.SHUT_RDWR)      # FIN, ACKed: FIN_WAIT2, not orphaned
    time.sleep(0.1)
    srv.send(b"late data")
    settle(0.1)
    return recv_error(cli)


def settle(seconds=0.05):
    """Give softirq processing on the veth pair a moment to finish."""
    time.sleep(seconds)



def listener(pair, side="b", family=socket.AF_INET, backlog=8):
    lst = pair.socket(side, family)
    lst.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lst.bind((pair.addr(side, family), 0))
    lst.listen(backlog)
    return lst, lst.getsockname()[1]


def block_output(pair, side, match=""):
    # chain names that are no nft keywords ("in", "out" are, in nft 0.9)
    pair.nft(side, "add table inet rsttrace_block; add chain inet "
             "rsttrace_block drop_out { type filter hook output priority 0; }; "
             "add rule inet rsttrace_block drop_out %s drop" % match)


def unblock(pair, side):
    pair.nft(side, "delete table inet rsttrace_block")


def block_input(pair, side, match="tcp dport 1-65535"):
    pair.nft(side, "add table inet rsttrace_in; "
             "add chain inet rsttrace_in drop_in { type filter hook input "
             "priority 0; }; add rule inet rsttrace_in drop_in %s drop"
             % match)


def unblock_input(pair, side):
    pair.nft(side, "delete table inet rsttrace_in")


def overflow(pair, port, shrink):
    """Two handshakes reach their final ACK at a listener on `port` in b
    whose accept queue is full. Deterministic: the SYNs meet an open queue
    (a SYN meeting a full queue, or a full request queue, is dropped or
    answered with a syncookie, which never resets), the clients' final
    ACKs are held back while shrink() cuts the backlog (a second listen()
    with 0: room for one), then let through with data: the second meets a
    full queue. Returns the two client sockets."""
    block_output(pair, "a", "tcp flags & (syn|ack) == ack")
    clients = []
    for _ in range(2):
        c = pair.socket("a")
        c.setblocking(False)
        c.connect_ex((pair.ipv4["b"], port))
        clients.append(c)
    time.sleep(0.2)
    shrink()
    unblock(pair, "a")
    for c in clients:                   # data carries the final ACK
        try:
            c.send(b"hello")
        except OSError:     # reset already: in a slow guest, b's SYN-ACK
            pass            # retransmit (1 s) drew the ACK early
        time.sleep(0.1)
    return clients


def stuffed(pair):
    """A connection whose client has data it cannot send: the server reads
    nothing and its small receive buffer closes the window."""
    cli, srv = connected(pair, 4)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    cli.setblocking(False)
    try:
        while True:
            cli.send(b"x" * 65536)
    except BlockingIOError:
        pass
    return cli, srv


def linger0(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                    struct.pack("ii", 1, 0))


def expect_error(sock, fn):
    try:
        fn()
    except OSError as e:
        return e.strerror
    return None
