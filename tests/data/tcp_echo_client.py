#!/usr/bin/env python3
# tests/data/tcp_echo_client.py HOST PORT BYTES MODE: the kernel side of
# test_stack_tcp's echo tests, run in the namespace.
#
# In "echo" mode a thread sends BYTES of seeded random data (randbytes is far faster than
# os.urandom, and the data need not be secret) and then shuts its write
# side down, while the main thread reads the echo until EOF; both sides
# are hashed as they go, so nothing is held in memory. Both directions run
# at once: the server opens its window only as the echo is read, so a
# client that sent everything before reading would deadlock. It prints the
# kernel's retransmission count for the transfer (this namespace's
# /proc/net/snmp) for the report. In "reset" mode it sends 1000 bytes and
# closes with SO_LINGER 0: a reset.
import hashlib, random, socket, struct, sys, threading, time

host, port, total, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

def kernel_retrans():
    lines = [l.split() for l in open("/proc/net/snmp") if l.startswith("Tcp:")]
    return int(lines[1][lines[0].index("RetransSegs")])

def connect():
    for attempt in range(50):
        try:
            return socket.create_connection((host, port), timeout=60)
        except (ConnectionRefusedError, socket.timeout):
            time.sleep(0.1)
    raise SystemExit("could not connect")

retrans_before = kernel_retrans()
s = connect()
if mode == "reset":
    s.sendall(b"x" * 1000)
    time.sleep(0.3)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
    print("reset sent", flush=True)
    sys.exit(0)

sent, got = hashlib.sha256(), hashlib.sha256()
failure = []

def send():
    try:
        rng = random.Random(20240611)
        left = total
        while left:
            chunk = rng.randbytes(min(left, 1 << 20))
            sent.update(chunk)
            s.sendall(chunk)
            left -= len(chunk)
        s.shutdown(socket.SHUT_WR)
    except Exception as e:
        failure.append(repr(e))

start = time.monotonic()
sender = threading.Thread(target=send)
sender.start()
received = 0
try:
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        got.update(b)
        received += len(b)
except Exception as e:
    failure.append(repr(e))
sender.join()
seconds = time.monotonic() - start
s.close()
print(f"sent {total} sha256 {sent.hexdigest()}")
print(f"received {received} sha256 {got.hexdigest()}")
print(f"seconds {seconds:.3f} MB/s {total / seconds / 1e6:.1f} kernel-retrans {kernel_retrans() - retrans_before}")
if failure:
    print("failure", failure)
sys.exit(0 if not failure and received == total and sent.digest() == got.digest() else 1)
