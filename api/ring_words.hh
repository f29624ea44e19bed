// RingWords<T>: how CompletionRing and PortRing keep an entry in a slot, as
// words as wide as T's size allows, so that a producer's stores and a
// racing reaper's loads can be atomic word by word (plain moves on x86)
// without a lock for any trivially copyable T. A reaper whose copy raced a
// producer finds out by its failed claim and throws the copy away; the
// words make that race defined behaviour (and quiet under ThreadSanitizer).
// Header-only.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace ringsock::api {

template <typename T>
struct RingWords {
    static_assert(std::is_trivially_copyable_v<T>, "ring entries are copied as bytes");
    using Word = std::conditional_t<
        sizeof(T) % 8 == 0, uint64_t,
        std::conditional_t<sizeof(T) % 4 == 0, uint32_t, std::conditional_t<sizeof(T) % 2 == 0, uint16_t, uint8_t>>>;
    static constexpr std::size_t kCount = sizeof(T) / sizeof(Word);
    static_assert(std::atomic_ref<Word>::is_always_lock_free);
    static_assert(std::atomic_ref<Word>::required_alignment <= sizeof(Word), "slots are packed");

    // Every copy here moves one word at a time between the slot and the
    // caller's T, never through a words[] array copied whole: the array's
    // 8-byte stores read back by 16-byte loads (or a T built field by field
    // read by them) stall store forwarding, which was two thirds of a
    // completion port's dequeue in perf and a third of a push.
    static void store(Word* slot, const T& item) noexcept
    {
        const auto* from = reinterpret_cast<const unsigned char*>(&item);
        for (std::size_t w = 0; w < kCount; ++w) {
            Word word;
            std::memcpy(&word, from + w * sizeof(Word), sizeof(Word));
            std::atomic_ref<Word>(slot[w]).store(word, std::memory_order_relaxed);
        }
    }
    // Only where no store can be under way (the caller holds the slot).
    // Plain loads, word by word rather than one memcpy: GCC expands a
    // fixed-size memcpy inline without ThreadSanitizer instrumentation, and
    // these loads are what lets TSan check the rings' orderings.
    static void load(const Word* slot, T& out) noexcept
    {
        auto* to = reinterpret_cast<unsigned char*>(&out); // T may have member initializers
        for (std::size_t w = 0; w < kCount; ++w) {
            const Word word = slot[w];
            std::memcpy(to + w * sizeof(Word), &word, sizeof(Word));
        }
    }
    // Where a producer may be storing meanwhile.
    static void load_racy(const Word* slot, T& out) noexcept
    {
        auto* to = reinterpret_cast<unsigned char*>(&out);
        for (std::size_t w = 0; w < kCount; ++w) {
            const Word word = std::atomic_ref<Word>(const_cast<Word&>(slot[w])).load(std::memory_order_relaxed);
            std::memcpy(to + w * sizeof(Word), &word, sizeof(Word));
        }
    }
};

} // namespace ringsock::api
