#!/usr/bin/env python3
"""The Linux kernel's side of the API tests, run inside the test's namespace.

send: datagrams of the given sizes from --src-port to --dst:--port; byte i of
datagram k is (k + i) % 256 so a test can check order and contents. With
--flows N, the same datagrams from each of N source ports counting up from
--src-port (N flows, as RSS tells them apart).
recv: prints each datagram received on --port as "<len> <hex>" until --count
arrived or --timeout passed; exits 0 only when all arrived. With --group, a
member of that IPv4 or IPv6 group on eth0 receives the group's datagrams;
with --show-ttl each line ends in "ttl=N", the TTL (hop limit) it came with,
and with --show-source in "from=ADDRESS". --bind chooses the address it
listens on (an IPv6 one, "::" too, listens for IPv6).
"""
import argparse
import socket
import struct
import sys
import time


def payload(k, size):
    return bytes((k + i) % 256 for i in range(size))


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("send")
    s.add_argument("--dst", default="198.18.0.2")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--src", help="the namespace's address to send from (198.18.0.1, or 2001:2::1 to IPv6; "
                                  "a link-local one with its interface: fe80::1%%eth0)")
    s.add_argument("--src-port", type=int, default=0)
    s.add_argument("--flows", type=int, default=1, help="source ports, counting up from --src-port")
    s.add_argument("--sizes", required=True, help="comma-separated datagram sizes")
    s.add_argument("--delay", type=float, default=0.0, help="seconds before the first datagram")
    s.add_argument("--gap", type=float, default=0.0005, help="seconds between datagrams")
    s.add_argument("--hop-options", choices=["pad", "router-alert"],
                   help="IPv6: a hop-by-hop options header before UDP (and before the fragment header) holding "
                        "padding only, or a router alert")
    s.add_argument("--ttl", type=int, help="the TTL (hop limit) to send with, multicast too")
    s.add_argument("--tos", type=lambda v: int(v, 0), help="the TOS byte (traffic class): DSCP << 2 | ECN")
    s.add_argument("--segment-routing", action="store_true",
                   help="IPv6: a segment routing header (routing type 4) before UDP with no segments left, "
                        "as the last node of an SRv6 path that kept the header receives it")
    r = sub.add_parser("recv")
    r.add_argument("--port", type=int, required=True)
    r.add_argument("--count", type=int, default=1)
    r.add_argument("--timeout", type=float, default=5.0)
    r.add_argument("--group", help="join this multicast group on eth0 and receive its datagrams")
    r.add_argument("--show-ttl", action="store_true", help="print each datagram's TTL (hop limit)")
    r.add_argument("--show-source", action="store_true", help="print each datagram's source address")
    r.add_argument("--show-tos", action="store_true", help="print each datagram's TOS byte (traffic class)")
    r.add_argument("--bind", default="198.18.0.1", help="the address to listen on without --group")
    a = p.parse_args()

    if a.cmd == "send":
        if a.flows > 1 and a.src_port == 0:
            p.error("--flows needs --src-port")
        socks = []
        for f in range(a.flows):
            if ":" in a.dst:  # IPv6
                sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
                src, _, scope = (a.src or "2001:2::1").partition("%")  # fe80::1%eth0: a link-local source
                sock.bind((src, a.src_port + f if a.src_port else 0, 0, socket.if_nametoindex(scope) if scope else 0))
                if a.dst.startswith("ff"):  # ff00::/8: leave through the veth
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF,
                                    struct.pack("@I", socket.if_nametoindex("eth0")))
                if a.hop_options:
                    # 8 bytes; the kernel fills in the next header. PadN of 4,
                    # or a router alert (MLD's value 0) and PadN of 0.
                    options = [1, 4, 0, 0, 0, 0] if a.hop_options == "pad" else [5, 2, 0, 0, 1, 0]
                    sock.setsockopt(socket.IPPROTO_IPV6, getattr(socket, "IPV6_HOPOPTS", 54),
                                    bytes([0, 0] + options))
                if a.segment_routing:
                    # 24 bytes: next header (the kernel's), length 2, type 4,
                    # segments left 0, last entry 0, flags, tag, and the one
                    # segment, the destination (the kernel routes to it).
                    sock.setsockopt(socket.IPPROTO_IPV6, getattr(socket, "IPV6_RTHDR", 57),
                                    bytes([0, 2, 4, 0, 0, 0, 0, 0]) + socket.inet_pton(socket.AF_INET6, a.dst))
                if a.ttl is not None:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_UNICAST_HOPS, a.ttl)
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, a.ttl)
                if a.tos is not None:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_TCLASS, a.tos)
                socks.append(sock)
                continue
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            src = a.src or "198.18.0.1"
            sock.bind((src, a.src_port + f if a.src_port else 0))
            if a.dst.startswith("2"):  # 224.0.0.0/4: leave through the veth
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(src))
            if a.dst.endswith(".255"):  # the subnet's broadcast
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            if a.ttl is not None:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_TTL, a.ttl)
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, a.ttl)
            if a.tos is not None:
                sock.setsockopt(socket.IPPROTO_IP, socket.IP_TOS, a.tos)
            socks.append(sock)
        time.sleep(a.delay)
        for sock in socks:
            for k, size in enumerate(int(x) for x in a.sizes.split(",")):
                sock.sendto(payload(k, size), (a.dst, a.port))
                time.sleep(a.gap)
        return 0

    ipv6 = ":" in (a.bind if a.group is None else a.group)
    sock = socket.socket(socket.AF_INET6 if ipv6 else socket.AF_INET, socket.SOCK_DGRAM)
    if a.group is None:
        sock.bind((a.bind, a.port))
    elif ipv6:
        sock.bind(("::", a.port))
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                        socket.inet_pton(socket.AF_INET6, a.group) + struct.pack("@I", socket.if_nametoindex("eth0")))
    else:
        sock.bind((a.group, a.port))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                        socket.inet_aton(a.group) + socket.inet_aton("198.18.0.1"))
    # Linux's values where Python names none: IP_RECVTTL 12, IP_TTL 2,
    # IPV6_RECVHOPLIMIT 51, IPV6_HOPLIMIT 52.
    ttl_cmsg = (socket.IPPROTO_IPV6, 52) if ipv6 else (socket.IPPROTO_IP, 2)
    if a.show_ttl:
        sock.setsockopt(ttl_cmsg[0], 51 if ipv6 else 12, 1)
    # IP_RECVTOS 13 (a one-byte IP_TOS 1 record), IPV6_RECVTCLASS 66 (an int
    # IPV6_TCLASS 67 record).
    tos_cmsg = (socket.IPPROTO_IPV6, 67) if ipv6 else (socket.IPPROTO_IP, 1)
    if a.show_tos:
        sock.setsockopt(tos_cmsg[0], 66 if ipv6 else 13, 1)
    print("ready", flush=True)
    deadline = time.time() + a.timeout
    got = 0
    while got < a.count:
        left = deadline - time.time()
        if left <= 0:
            return 1
        sock.settimeout(left)
        try:
            data, ancillary, _, source = sock.recvmsg(65536, 2 * socket.CMSG_SPACE(4))
        except socket.timeout:
            return 1
        ttl = [struct.unpack("@i", d[:4])[0] for level, kind, d in ancillary if (level, kind) == ttl_cmsg]
        tos = [d[0] for level, kind, d in ancillary if (level, kind) == tos_cmsg]
        print(len(data), data.hex(), *(["ttl=%d" % ttl[0]] if a.show_ttl and ttl else []),
              *(["tos=%d" % tos[0]] if a.show_tos and tos else []),
              *(["from=%s" % source[0].split("%")[0]] if a.show_source else []), flush=True)
        got += 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
