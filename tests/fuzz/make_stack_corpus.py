#!/usr/bin/env python3
"""Writes fuzz_stack's seed inputs into tests/fuzz/corpus-stack/.

Each seed is what fuzz_stack.cc reads: one byte of choices, then frames as
[advance in 20 ms units][length, 2 bytes little-endian][offload bits][frame].
The frames are valid ones lwIP takes (checksums right), so the fuzzer starts
inside ARP, ICMP, reassembly, ND, IGMP, MLD and the TCP handshake rather
than at the first length check. Standard library only; run it again after
changing the addresses in fuzz_stack.cc:  python3 tests/fuzz/make_stack_corpus.py
"""
import os
import struct

OUR_MAC = bytes([0x02, 0, 0, 0, 0, 0x02])
PEER_MAC = bytes([0x02, 0, 0, 0, 0, 0x01])
OUR_IP = bytes([198, 18, 0, 2])
PEER_IP = bytes([198, 18, 0, 1])
OUR_IP6 = bytes.fromhex("20010db8000000000000000000000002")
PEER_IP6 = bytes.fromhex("20010db8000000000000000000000001")
FAST_PATH_PORT = 5000
TCP_PORT = 80
ISN = 0x10000000  # fuzz_stack.cc's kInitialSequence


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def eth(dst, ethertype, payload):
    return dst + PEER_MAC + struct.pack("!H", ethertype) + payload


def ipv4(proto, payload, ident=1, frag=0, dst=OUR_IP, ttl=64):
    header = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), ident, frag, ttl, proto, 0, PEER_IP, dst)
    header = header[:10] + struct.pack("!H", csum(header)) + header[12:]
    return eth(OUR_MAC, 0x0800, header + payload)


def l4_sum4(proto, segment):
    pseudo = PEER_IP + OUR_IP + struct.pack("!BBH", 0, proto, len(segment))
    return csum(pseudo + segment)


def l4_sum6(proto, segment, src=PEER_IP6, dst=OUR_IP6):
    pseudo = src + dst + struct.pack("!IxxxB", len(segment), proto)
    return csum(pseudo + segment)


def udp4(dport, payload, sport=40000):
    seg = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    return seg[:6] + struct.pack("!H", l4_sum4(17, seg) or 0xFFFF) + seg[8:]


def tcp(sport, dport, seq, ack, flags, payload=b"", sum_fn=None):
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + payload
    return seg[:16] + struct.pack("!H", sum_fn(6, seg)) + seg[18:]


def ipv6(next_header, payload, src=PEER_IP6, dst=OUR_IP6, hop_limit=64, dst_mac=OUR_MAC):
    header = struct.pack("!IHBB16s16s", 6 << 28, len(payload), next_header, hop_limit, src, dst)
    return eth(dst_mac, 0x86DD, header + payload)


def icmp6(type_, code, body, src=PEER_IP6, dst=OUR_IP6):
    msg = struct.pack("!BBH", type_, code, 0) + body
    return msg[:2] + struct.pack("!H", l4_sum6(58, msg, src, dst)) + msg[4:]


def frame(data, advance=0, bits=0):
    return struct.pack("<BHB", advance, len(data), bits) + data


def seed(choices, *frames):
    return bytes([choices]) + b"".join(frames)


def seeds():
    payload = bytes(range(64))
    arp = eth(b"\xff" * 6, 0x0806,
              struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, PEER_MAC, PEER_IP, b"\0" * 6, OUR_IP))
    yield "arp_request", seed(0, frame(arp))

    echo = struct.pack("!BBHHH", 8, 0, 0, 7, 1) + payload
    echo = echo[:2] + struct.pack("!H", csum(echo)) + echo[4:]
    yield "icmp4_echo", seed(0, frame(arp), frame(ipv4(1, echo)))

    datagram = udp4(FAST_PATH_PORT, bytes(range(200)))
    yield "udp4_fragments", seed(0, frame(ipv4(17, datagram[:104], ident=9, frag=0x2000)),
                                 frame(ipv4(17, datagram[104:], ident=9, frag=104 // 8)))
    yield "udp4_fragment_times_out", seed(0, frame(ipv4(17, datagram[:104], ident=10, frag=0x2000), advance=250))
    yield "udp4_unbound_port", seed(1, frame(arp), frame(ipv4(17, udp4(6000, payload))))

    def tcp4(seq, flags, data=b"", ack=ISN + 1):
        return ipv4(6, tcp(40000, TCP_PORT, seq, ack, flags, data, sum_fn=l4_sum4))

    syn = tcp4(1000, 0x02, ack=0)
    yield "tcp4_handshake", seed(0, frame(arp), frame(syn, advance=1), frame(tcp4(1001, 0x10)),
                                 frame(tcp4(1001, 0x18, payload)))
    # Out of order, then the hole filled, then the peer's FIN.
    yield "tcp4_reordered_then_fin", seed(0, frame(arp), frame(syn), frame(tcp4(1001, 0x10)),
                                          frame(tcp4(1001 + 128, 0x18, payload)), frame(tcp4(1001, 0x18, payload)),
                                          frame(tcp4(1001 + 64, 0x18, payload)), frame(tcp4(1001 + 192, 0x11)))
    # Split after the TCP header: lwIP copies chained frames.
    yield "tcp4_syn_chained", seed(2, frame(arp), frame(syn, bits=0x78))

    igmp_query = struct.pack("!BBH4s", 0x11, 100, 0, b"\0" * 4)
    igmp_query = igmp_query[:2] + struct.pack("!H", csum(igmp_query)) + igmp_query[4:]
    yield "igmp_query", seed(0, frame(ipv4(2, igmp_query, dst=bytes([224, 0, 0, 1]), ttl=1)))

    solicited = bytes.fromhex("ff0200000000000000000001ff000002")
    ns = icmp6(135, 0, b"\0" * 4 + OUR_IP6 + bytes([1, 1]) + PEER_MAC, dst=solicited)
    yield "nd6_solicitation", seed(0, frame(ipv6(58, ns, dst=solicited, hop_limit=255,
                                                 dst_mac=bytes([0x33, 0x33, 0xFF, 0, 0, 0x02]))))
    na = icmp6(136, 0, struct.pack("!I", 0x60000000) + PEER_IP6 + bytes([2, 1]) + PEER_MAC)
    echo6 = icmp6(128, 0, struct.pack("!HH", 7, 1) + payload)
    yield "icmp6_echo", seed(0, frame(ipv6(58, na, hop_limit=255)), frame(ipv6(58, echo6)))

    udp6 = struct.pack("!HHHH", 40000, FAST_PATH_PORT, 8 + 200, 0) + bytes(range(200))
    udp6 = udp6[:6] + struct.pack("!H", l4_sum6(17, udp6)) + udp6[8:]
    first = struct.pack("!BBHI", 17, 0, 0 | 1, 77) + udp6[:104]
    second = struct.pack("!BBHI", 17, 0, 104, 77) + udp6[104:]
    yield "udp6_fragments", seed(0, frame(ipv6(44, first)), frame(ipv6(44, second)))

    # The same fragments behind hop-by-hop options, and one whole datagram
    # behind a router alert: both lwIP's, handed back by its raw pcbs.
    padding = bytes([44, 0, 1, 4, 0, 0, 0, 0])
    yield "udp6_fragments_hop_by_hop", seed(0, frame(ipv6(0, padding + first)), frame(ipv6(0, padding + second)))
    alert = bytes([17, 0, 5, 2, 0, 0, 1, 0])
    yield "udp6_router_alert", seed(0, frame(ipv6(0, alert + udp6)))

    syn6 = ipv6(6, tcp(40000, TCP_PORT, 5000, 0, 0x02, sum_fn=l4_sum6))
    ack6 = ipv6(6, tcp(40000, TCP_PORT, 5001, ISN + 1, 0x18, payload, sum_fn=l4_sum6))
    yield "tcp6_handshake", seed(0, frame(ipv6(58, na, hop_limit=255)), frame(syn6), frame(ack6))

    # From ::1 off the wire, with a next header lwIP does not know: lwIP
    # answers a parameter problem to ::1, which it routes to its loopback
    # queue (the input the fuzzer found on 2026-12-06; the harness now
    # drains that queue as LwipInterface::poll does). Since the classifier
    # drops frames from ::1 as `martian` it stops there; kept as a seed for
    # the classifier's martian branch.
    yield "ipv6_from_loopback", seed(0, frame(ipv6(200, bytes(8), src=bytes(15) + b"\x01")))

    mld_query = icmp6(130, 0, struct.pack("!HH", 1000, 0) + b"\0" * 16, src=bytes.fromhex("fe80" + "00" * 13 + "01"),
                      dst=bytes.fromhex("ff02" + "00" * 13 + "01"))
    hop_by_hop = bytes([58, 0, 5, 2, 0, 0, 1, 0])  # router alert, then PadN
    yield "mld_query", seed(0, frame(ipv6(0, hop_by_hop + mld_query, src=bytes.fromhex("fe80" + "00" * 13 + "01"),
                                          dst=bytes.fromhex("ff02" + "00" * 13 + "01"), hop_limit=1,
                                          dst_mac=bytes([0x33, 0x33, 0, 0, 0, 1]))))


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus-stack")
    os.makedirs(out, exist_ok=True)
    for name, data in seeds():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
