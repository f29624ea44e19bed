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

    static void store(Word* slot, const T& item) noexcept
    {
        Word words[kCount];
        std::memcpy(words, &item, sizeof(T));
        for (std::size_t w = 0; w < kCount; ++w)
            std::atomic_ref<Word>(slot[w]).store(words[w], std::memory_order_relaxed);
    }
    // Only where no store can be under way (the caller holds the slot).
    // Plain loads, word by word rather than one memcpy: GCC expands a
    // fixed-size memcpy inline without ThreadSanitizer instrumentation, and
    // these loads are what lets TSan check the rings' orderings.
    static void load(const Word* slot, T& out) noexcept
    {
        Word words[kCount];
        for (std::size_t w = 0; w < kCount; ++w)
            words[w] = slot[w];
        std::memcpy(static_cast<void*>(&out), words, sizeof(T)); // T may have member initializers
    }
    // Where a producer may be storing meanwhile.
    static void load_racy(const Word* slot, T& out) noexcept
    {
        Word words[kCount];
        for (std::size_t w = 0; w < kCount; ++w)
            words[w] = std::atomic_ref<Word>(const_cast<Word&>(slot[w])).load(std::memory_order_relaxed);
        std::memcpy(static_cast<void*>(&out), words, sizeof(T));
    }
};

} // namespace ringsock::api
