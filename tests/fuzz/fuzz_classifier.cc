// libFuzzer target for the classifier: any byte string, copied into an mbuf
// (optionally split over two segments), with offload flags and stripped
// VLAN tags drawn from its first bytes, is classified and everything is
// freed again. Built with ASan+UBSan: a read past the frame, a leak of an
// mbuf (checked every run against the pool) or undefined behaviour fails.
//
// EAL starts once per process (fuzz_eal.hh). Single-threaded.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <string>
#include <vector>

#include <rte_eal.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <sanitizer/asan_interface.h>
#include <unistd.h>

#include "stack/classifier.hh"
#include "tests/fuzz/fuzz_eal.hh"

namespace {

using namespace ringsock::stack;

// Header bytes the fuzzer spends on the mbuf's metadata before the frame.
constexpr std::size_t kControlBytes = 4;
// Room for any input: libFuzzer's default -max_len is 4096; longer inputs
// are cut here, as a PMD would not hand us more in one mbuf chain anyway.
constexpr uint16_t kDataRoom = 4096 + RTE_PKTMBUF_HEADROOM;

rte_mempool* pool = nullptr;

ClassifierConfig config(uint8_t variant)
{
    ClassifierConfig c;
    // Half the runs with every filter on, half with none: both code paths.
    if (variant & 1) {
        c.mac = MacAddress{0x02, 0, 0, 0, 0, 0x01};
        c.ipv4 = {{Ipv4Address{198, 18, 0, 2}, 24}};
        c.ipv6 = {Ipv6Address{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02}};
        c.vlan = 10;
        c.outer_vlan = 100;
    }
    c.unbound_udp_to_lwip = (variant & 2) != 0;
    return c;
}

Classifier* classifiers[4] = {};

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***)
{
    ringsock::fuzzing::start_eal("fuzz_classifier");
    pool = rte_pktmbuf_pool_create("fuzz_cls", 255, 0, 0, kDataRoom, SOCKET_ID_ANY);
    if (pool == nullptr) {
        std::fprintf(stderr, "fuzz_classifier: cannot create the mbuf pool\n");
        std::abort();
    }
    for (uint8_t v = 0; v < 4; ++v) {
        classifiers[v] = new Classifier(config(v)); // lives for the process: libFuzzer never returns
        classifiers[v]->bind_udp_port(9);
        classifiers[v]->bind_udp_port(5000);
        classifiers[v]->bind_udp_port(53);
    }
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size)
{
    if (size < kControlBytes) return 0;
    const uint8_t flags = data[0]; // offload verdict bits
    const uint8_t shape = data[1]; // classifier variant, segmentation, stripped tags
    const uint8_t split = data[2]; // where the second segment starts
    const uint8_t tci = data[3];   // stripped VLAN id(s)
    data += kControlBytes;
    size -= kControlBytes;
    size = std::min<std::size_t>(size, kDataRoom - RTE_PKTMBUF_HEADROOM);

    Classifier* classifier = classifiers[shape & 3];
    const unsigned available_before = rte_mempool_avail_count(pool);

    // Either one segment, or two split at `split` (bytes into the frame).
    const bool chained = (shape & 4) != 0 && size > 0 && split < size;
    const std::size_t first = chained ? split : size;
    rte_mbuf* m = rte_pktmbuf_alloc(pool);
    if (m == nullptr) std::abort();
    char* dst = rte_pktmbuf_append(m, static_cast<uint16_t>(first));
    if (first != 0) std::memcpy(dst, data, first);
    if (chained) {
        rte_mbuf* tail = rte_pktmbuf_alloc(pool);
        if (tail == nullptr) std::abort();
        char* t = rte_pktmbuf_append(tail, static_cast<uint16_t>(size - first));
        std::memcpy(t, data + first, size - first);
        if (rte_pktmbuf_chain(m, tail) != 0) std::abort();
    }

    uint64_t ol = 0;
    if (flags & 0x01) ol |= RTE_MBUF_F_RX_IP_CKSUM_BAD;
    if (flags & 0x02) ol |= RTE_MBUF_F_RX_IP_CKSUM_GOOD;
    if (flags & 0x04) ol |= RTE_MBUF_F_RX_L4_CKSUM_BAD;
    if (flags & 0x08) ol |= RTE_MBUF_F_RX_L4_CKSUM_GOOD;
    if (flags & 0x10) ol |= RTE_MBUF_F_RX_VLAN | RTE_MBUF_F_RX_VLAN_STRIPPED;
    if (flags & 0x20) ol |= RTE_MBUF_F_RX_QINQ | RTE_MBUF_F_RX_QINQ_STRIPPED | RTE_MBUF_F_RX_VLAN_STRIPPED;
    m->ol_flags = ol;
    m->vlan_tci = static_cast<uint16_t>(tci & 0x0f ? 10 : tci);
    m->vlan_tci_outer = static_cast<uint16_t>(tci & 0x10 ? 100 : tci * 17u);

    // Poison the unused tail of the first segment's buffer so ASan reports
    // any read past data_len (the buffer itself is a valid allocation).
    uint8_t* tail_begin = rte_pktmbuf_mtod_offset(m, uint8_t*, first);
    const std::size_t tail_len = rte_pktmbuf_tailroom(m);
    if (tail_len != 0) ASAN_POISON_MEMORY_REGION(tail_begin, tail_len);

    UdpDatagram udp[1];
    rte_mbuf* lwip[1];
    const ClassifiedBurst r = classifier->classify(&m, 1, udp, lwip);
    if (r.udp + r.lwip + r.dropped != 1) std::abort();
    if (r.udp == 1) {
        const UdpDatagram& d = udp[0];
        // The fast path's view must lie inside the packet.
        if (d.mbuf != m || uint32_t{d.payload_offset} + d.payload_length > rte_pktmbuf_pkt_len(m)) std::abort();
        if (d.family != 4 && d.family != 6) std::abort();
    }
    if (r.udp + r.lwip == 1) {
        if (tail_len != 0) ASAN_UNPOISON_MEMORY_REGION(tail_begin, tail_len);
        if (m->l2_len + m->l3_len > rte_pktmbuf_data_len(m)) std::abort();
        rte_pktmbuf_free(m);
    } else if (tail_len != 0) {
        // Already freed by the classifier: the buffer is back in the pool.
        ASAN_UNPOISON_MEMORY_REGION(tail_begin, tail_len);
    }
    if (rte_mempool_avail_count(pool) != available_before) std::abort(); // every mbuf given back
    return 0;
}
