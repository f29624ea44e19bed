#!/usr/bin/env python3
"""Writes a pcap of UDP frames for net_pcap's infinite_rx replay
(scripts/bench/udp-replay): --flows frames of --size bytes (Ethernet, no
FCS) from 198.18.0.1:40000+i to 198.18.0.2:9, to --dst-mac, with valid IP
and UDP checksums. Standard library only."""
import argparse
import struct


def ones_complement(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def udp_frame(size: int, source_port: int, dst_mac: bytes) -> bytes:
    src_ip, dst_ip = bytes([198, 18, 0, 1]), bytes([198, 18, 0, 2])
    payload = bytes((source_port + i) & 0xFF for i in range(size - 42))
    udp_length = 8 + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_length, 0, 0, 64, 17, 0, src_ip, dst_ip)
    ip = ip[:10] + struct.pack("!H", ones_complement(ip)) + ip[12:]
    udp = struct.pack("!HHHH", source_port, 9, udp_length, 0) + payload
    checksum = ones_complement(src_ip + dst_ip + struct.pack("!BBH", 0, 17, udp_length) + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", checksum) + udp[8:]
    return dst_mac + bytes.fromhex("020000000001") + b"\x08\x00" + ip + udp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=64, help="frame bytes, 60 to 1514")
    parser.add_argument("--flows", type=int, default=64, help="frames (one source port each)")
    parser.add_argument("--dst-mac", default="02:00:00:00:00:02")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if not 60 <= args.size <= 1514:
        parser.error("--size must be from 60 to 1514")
    if not 1 <= args.flows <= 25535:
        parser.error("--flows must be from 1 to 25535")
    dst_mac = bytes.fromhex(args.dst_mac.replace(":", ""))
    with open(args.out, "wb") as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))  # microsecond pcap, Ethernet
        for flow in range(args.flows):
            frame = udp_frame(args.size, 40000 + flow, dst_mac)
            out.write(struct.pack("<IIII", 0, flow, len(frame), len(frame)) + frame)


if __name__ == "__main__":
    main()
