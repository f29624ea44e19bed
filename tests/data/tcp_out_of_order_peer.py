#!/usr/bin/env python3
"""A TCP peer that leaves a hole: it opens connections to ringsock from an
address the namespace's kernel does not own (so the kernel neither answers
nor resets), answering lwIP's ARP itself on a packet socket, then sends
every connection's data beyond its first bytes (each segment waits in
lwIP's out-of-order queue), checks that ringsock still answers a ping, and
then sends each stream whole, in order, until ringsock acknowledges its
last byte. Run by test_stack_tcp inside the namespace; every loop is
bounded by --seconds. Exit status 0 only when every byte was acknowledged.

Prints, flushed, one line per phase:
  connected K
  syn-ack ttl T (the TTLs ringsock's SYN-ACKs came with)
  flooded K x N segments of S bytes
  ping answered | ping lost
  acknowledged C of K streams, B bytes each
"""
import argparse
import os
import random
import select
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
ETH_IP, ETH_ARP = 0x0800, 0x0806
SYN, RST, PSH, ACK = 0x02, 0x04, 0x08, 0x10


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


class Link:
    def __init__(self, iface, our_mac, peer_mac, our_ip, peer_ip):
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
        self.sock.bind((iface, 0))
        self.our_mac, self.peer_mac = our_mac, peer_mac
        self.our_ip, self.peer_ip = socket.inet_aton(our_ip), socket.inet_aton(peer_ip)
        self.ip_id = 0

    def send_ip(self, protocol, payload):
        self.ip_id = (self.ip_id + 1) & 0xFFFF
        header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), self.ip_id, 0, 64, protocol, 0,
                             self.our_ip, self.peer_ip)
        header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
        self.sock.send(self.peer_mac + self.our_mac + struct.pack("!H", ETH_IP) + header + payload)

    def send_tcp(self, sport, dport, seq, ack, flags, payload=b"", options=b""):
        offset = (20 + len(options)) // 4
        header = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, offset << 4, flags,
                             65535, 0, 0) + options
        pseudo = self.our_ip + self.peer_ip + struct.pack("!BBH", 0, 6, len(header) + len(payload))
        total = checksum(pseudo + header + payload)
        header = header[:16] + struct.pack("!H", total) + header[18:]
        self.send_ip(6, header + payload)

    def frames(self, timeout):
        """Frames addressed to us within `timeout` seconds: ('tcp', sport,
        dport, seq, ack, flags, ttl) and ('icmp', type, id, seq) tuples. ARP
        requests for our address are answered on the way."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.sock], [], [], left)[0]:
                return
            while True:
                try:
                    frame = self.sock.recv(2048, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    break
                parsed = self.parse(frame)
                if parsed is not None:
                    yield parsed

    def parse(self, frame):
        if len(frame) < 14:
            return None
        ethertype = struct.unpack("!H", frame[12:14])[0]
        if ethertype == ETH_ARP and len(frame) >= 42:
            op = struct.unpack("!H", frame[20:22])[0]
            if op == 1 and frame[38:42] == self.our_ip:
                reply = struct.pack("!HHBBH", 1, ETH_IP, 6, 4, 2) + self.our_mac + self.our_ip + frame[22:28] + \
                    frame[28:32]
                self.sock.send(frame[6:12] + self.our_mac + struct.pack("!H", ETH_ARP) + reply)
            return None
        if ethertype != ETH_IP or frame[0:6] != self.our_mac or frame[30:34] != self.our_ip:
            return None
        ihl = (frame[14] & 0x0F) * 4
        body = frame[14 + ihl:]
        if frame[23] == 6 and len(body) >= 20:
            sport, dport, seq, ack, _, flags = struct.unpack("!HHIIBB", body[:14])
            return ("tcp", sport, dport, seq, ack, flags, frame[22])
        if frame[23] == 1 and len(body) >= 8:
            kind, _, _, ident, seq = struct.unpack("!BBHHH", body[:8])
            return ("icmp", kind, ident, seq)
        return None


def pattern(offset, length):
    return bytes((offset + i) % 251 for i in range(length))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--iface", default="eth0")
    parser.add_argument("--peer-mac", required=True, help="ringsock's MAC, 12 hex digits")
    parser.add_argument("--peer", default="198.18.0.2")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--source", default="198.18.0.77")
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--segments", type=int, required=True, help="out-of-order segments per connection")
    parser.add_argument("--size", type=int, default=100, help="bytes per out-of-order segment")
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    deadline = time.monotonic() + args.seconds
    link = Link(args.iface, bytes.fromhex("020000004d77"), bytes.fromhex(args.peer_mac), args.source, args.peer)

    # Handshakes: window scaling, or lwIP's window stays below 64 KB.
    options = struct.pack("!BBH", 2, 4, 1460) + bytes([1, 3, 3, 7, 4, 2, 1, 1])
    ports = [43000 + k for k in range(args.connections)]
    ours = {p: random.getrandbits(32) for p in ports}
    theirs = {}
    ttls = set()
    while len(theirs) < len(ports) and time.monotonic() < deadline:
        for p in ports:
            if p not in theirs:
                link.send_tcp(p, args.port, ours[p], 0, SYN, options=options)
        for kind, sport, dport, seq, ack, flags, ttl in (f for f in link.frames(0.5) if f[0] == "tcp"):
            if sport == args.port and dport in ours and flags & (SYN | ACK) == SYN | ACK and \
                    ack == (ours[dport] + 1) & 0xFFFFFFFF and dport not in theirs:
                theirs[dport] = seq
                ttls.add(ttl)
                link.send_tcp(dport, args.port, ours[dport] + 1, seq + 1, ACK)
    print("connected", len(theirs), flush=True)
    print("syn-ack ttl", " ".join(str(t) for t in sorted(ttls)), flush=True)
    if len(theirs) < len(ports):
        return 1

    # Everything but the first `size` bytes of each stream, round robin
    # over the connections so that their queues grow together.
    stream = args.size * (args.segments + 1)
    for i in range(1, args.segments + 1):
        for p in ports:
            link.send_tcp(p, args.port, ours[p] + 1 + i * args.size, theirs[p] + 1, ACK | PSH,
                          pattern(i * args.size, args.size))
    for _ in link.frames(0.3):
        pass
    print("flooded", len(ports), "x", args.segments, "segments of", args.size, "bytes", flush=True)

    answered = False
    for attempt in range(10):
        body = struct.pack("!BBHHH", 8, 0, 0, 0x4d77, attempt) + b"ringsock"
        link.send_ip(1, body[:2] + struct.pack("!H", checksum(body)) + body[4:])
        if any(f[0] == "icmp" and f[1] == 0 and f[2] == 0x4d77 for f in link.frames(0.5)):
            answered = True
            break
    print("ping answered" if answered else "ping lost", flush=True)

    # Each stream again from what ringsock acknowledged, 64 KB at a time.
    acked = {p: 0 for p in ports}
    for p in ports:
        chunk = 1400
        while acked[p] < stream and time.monotonic() < deadline:
            offset = acked[p]
            while offset < min(stream, acked[p] + 65536):
                length = min(chunk, stream - offset)
                link.send_tcp(p, args.port, ours[p] + 1 + offset, theirs[p] + 1, ACK | PSH,
                              pattern(offset, length))
                offset += length
            for kind, sport, dport, seq, ack, flags, _ in (f for f in link.frames(0.1) if f[0] == "tcp"):
                if sport == args.port and dport in ours and flags & ACK:
                    got = (ack - ours[dport] - 1) & 0xFFFFFFFF
                    if got <= stream and got > acked[dport]:
                        acked[dport] = got
                if acked[p] >= stream:
                    break
    done = sum(1 for p in ports if acked[p] >= stream)
    print("acknowledged", done, "of", len(ports), "streams,", stream, "bytes each", flush=True)
    for p in ports:
        link.send_tcp(p, args.port, ours[p] + 1 + acked[p], 0, RST)
    return 0 if answered and done == len(ports) else 1


if __name__ == "__main__":
    sys.exit(main())
