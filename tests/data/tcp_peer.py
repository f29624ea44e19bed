#!/usr/bin/env python3
# tests/data/tcp_peer.py: the kernel side of test_api_tcp, run in the
# namespace. One connection (or a loop of them) per run; every transfer is
# hashed as it goes and reported as "sent N HEX" / "received N HEX".
#
#   server PORT MODE [BYTES]      listen on 0.0.0.0:PORT, accept once
#   server6 PORT MODE [BYTES]     the same on :: (IPv6 and, mapped, IPv4 clients)
#   client HOST PORT MODE [BYTES] connect once
#   gtsm-server, gtsm-client      as server and client, with RFC 5082's TTL
#                                 security: IP_MINTTL 255 drops every segment
#                                 that arrives with a lower TTL (the SYN, the
#                                 SYN-ACK and all after)
#
# MODE:
#   exchange  send BYTES of seeded data (then FIN) while reading to EOF
#   sink      read to EOF
#   source    send BYTES, then FIN, then wait for the peer's FIN; prints the
#             namespace's TCP retransmissions meanwhile, split into
#             "probes" and "repairs" (see retransmissions())
#   trickle   as source, in writes of 100 bytes with TCP_NODELAY: segments
#             of 100 bytes while the receiver's window is open
#   reset     send BYTES, wait 0.3 s, close with SO_LINGER {1, 0}: RST
#   fin       send BYTES, then FIN, then read to EOF
#   loop      (client) connect and close at once; BYTES times
#   sameport  (client) BYTES times from the same source port: connect, wait
#             for the server's FIN (the server closes first, so TIME-WAIT is
#             the server's), close; each connect must succeed within 3 s
#   accept    (server) accept and close BYTES connections
#   slow      read one byte a second for 3 s, then read to EOF
#   reply     (server) BYTES at a time: read exactly BYTES, answer one byte;
#             until EOF (a request/response peer for TCP_NODELAY)
import hashlib, random, socket, struct, sys, threading, time

def tcp_counters():
    counters = {}
    for name in ("/proc/net/snmp", "/proc/net/netstat"):
        rows = [l.split() for l in open(name)]
        for keys, values in zip(rows[0::2], rows[1::2]):
            if keys[0] in ("Tcp:", "TcpExt:"):
                counters.update(zip(keys[1:], map(int, values[1:])))
    return counters

# What the namespace's TCP retransmitted since `before`. A tail-loss probe
# (RFC 8985) goes out when an ACK is a few milliseconds late, lost or not;
# our lwIP sends no DSACK, so the kernel never learns that a probe was
# spurious. Probes say the receiver was slow to answer (its engine
# descheduled); repairs (fast retransmits, timeouts and what slow start
# resends after one) say a segment was lost.
def retransmissions(before):
    now = tcp_counters()
    d = lambda key: now.get(key, 0) - before.get(key, 0)
    fast, timeouts, slow_start = d("TCPFastRetrans"), d("TCPTimeouts"), d("TCPSlowStartRetrans")
    return d("RetransSegs"), d("TCPLossProbes"), fast + timeouts + slow_start, fast, timeouts, slow_start

def data(total):
    rng = random.Random(20261123)
    left = total
    while left:
        n = min(left, 65536)
        yield rng.randbytes(n)
        left -= n

def send_all(s, total, piece=65536):
    h, n = hashlib.sha256(), 0
    for chunk in data(total):
        for at in range(0, len(chunk), piece):
            s.sendall(chunk[at:at + piece])
        h.update(chunk)
        n += len(chunk)
    print("sent", n, h.hexdigest(), flush=True)

def read_all(s):
    h, n = hashlib.sha256(), 0
    while True:
        try:
            chunk = s.recv(1 << 20)
        except ConnectionResetError:
            print("reset after", n, flush=True)
            return
        if not chunk:
            break
        h.update(chunk)
        n += len(chunk)
    print("received", n, h.hexdigest(), flush=True)

def serve(s, mode, total):
    if mode == "exchange":
        t = threading.Thread(target=lambda: (send_all(s, total), s.shutdown(socket.SHUT_WR)))
        t.start()
        read_all(s)
        t.join()
    elif mode == "sink":
        read_all(s)
    elif mode in ("source", "trickle", "fin"):
        before = tcp_counters()
        if mode == "trickle":
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        send_all(s, total, 100 if mode == "trickle" else 65536)
        print("retransmits %d probes %d repairs %d (fast %d timeouts %d slow start %d)" % retransmissions(before),
              flush=True)
        s.shutdown(socket.SHUT_WR)
        read_all(s)
    elif mode == "reset":
        send_all(s, total)
        time.sleep(0.3)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    elif mode == "slow":
        got = 0
        try:
            for _ in range(3):
                got += len(s.recv(1))
                time.sleep(1)
        except ConnectionResetError:
            print("reset after", got, flush=True)
            s.close()
            return
        print("slow read", got, flush=True)
        read_all(s)
    elif mode == "reply":
        rounds = 0
        while True:
            need, eof = total, False
            while need:
                chunk = s.recv(need)
                if not chunk:
                    eof = True
                    break
                need -= len(chunk)
            if eof:
                break
            s.sendall(b"r")
            rounds += 1
        print("replied", rounds, flush=True)
    s.close()

IP_MINTTL = getattr(socket, "IP_MINTTL", 21)

def connect(host, port):
    if gtsm:  # IP_MINTTL before the SYN, so that it judges the SYN-ACK too
        s = socket.socket()
        s.setsockopt(socket.IPPROTO_IP, IP_MINTTL, 255)
        s.settimeout(10)
        try:
            s.connect((host, port))
        except OSError as e:
            raise SystemExit(f"could not connect with IP_MINTTL 255: {e}")
        s.settimeout(120)
        return s
    for _ in range(100):
        try:
            return socket.create_connection((host, port), timeout=120)
        except (ConnectionRefusedError, socket.timeout):
            time.sleep(0.05)
    raise SystemExit("could not connect")

role = sys.argv[1]
gtsm = role.startswith("gtsm-")
role = role.removeprefix("gtsm-")
if role in ("server", "server6"):
    # server6: on :: (Linux's dual stack: IPv4 clients too).
    port, mode = int(sys.argv[2]), sys.argv[3]
    total = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    ls = socket.socket(socket.AF_INET6 if role == "server6" else socket.AF_INET)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if gtsm:
        ls.setsockopt(socket.IPPROTO_IP, IP_MINTTL, 255)
    ls.bind(("::" if role == "server6" else "0.0.0.0", port))
    ls.listen(128)
    ls.settimeout(120)
    print("listening", flush=True)
    if mode == "accept":
        for _ in range(total):
            c, _ = ls.accept()
            c.close()
        print("accepted", total, flush=True)
    else:
        c, _ = ls.accept()
        c.settimeout(120)
        serve(c, mode, total)
else:
    host, port, mode = sys.argv[2], int(sys.argv[3]), sys.argv[4]
    total = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    if mode == "loop":
        # The client closes first, so TIME_WAIT is the kernel's, as with
        # most clients (sameport covers ringsock's own TIME_WAIT).
        for _ in range(total):
            s = connect(host, port)
            s.close()
        print("connected", total, flush=True)
    elif mode == "sameport":
        for i in range(total):
            deadline = time.monotonic() + 3
            while True:
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("0.0.0.0", 45123))
                s.settimeout(3)
                try:
                    s.connect((host, port))
                    break
                except OSError as e:
                    s.close()
                    # Our last close is in LAST-ACK until the server's ACK.
                    if e.errno != 99 or time.monotonic() > deadline:
                        raise SystemExit(f"connection {i} from port 45123: {e}")
                    time.sleep(0.01)
            if s.recv(1) != b"":
                raise SystemExit(f"connection {i}: expected the server's FIN")
            s.close()
        print("sameport", total, flush=True)
    else:
        serve(connect(host, port), mode, total)
