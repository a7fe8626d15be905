#include "engine/util/uuid.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <mutex>
#include <random>

namespace courier::util {

namespace {

std::string format_uuid(std::uint64_t high, std::uint64_t low, std::uint64_t version) {
  high = (high & ~0xF000ull) | (version << 12);
  low = (low & ~(0xC0ull << 56)) | (0x80ull << 56);  // variant 10
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 32; ++i) {
    const std::uint64_t word = i < 16 ? high : low;
    const int shift = 60 - 4 * (i % 16);
    out += digits[(word >> shift) & 0xF];
    if (i == 7 || i == 11 || i == 15 || i == 19) out += '-';
  }
  return out;
}

std::mt19937_64& generator() {
  // One generator per thread, seeded from the system's entropy.
  thread_local std::mt19937_64 generator{(std::random_device{}() * 0x9E3779B97F4A7C15ull) ^
                                         std::random_device{}()};
  return generator;
}

}  // namespace

std::string random_uuid() {
  const std::uint64_t high = generator()();
  return format_uuid(high, generator()(), 4);
}

std::string time_ordered_uuid() {
  // 48 bits of milliseconds and a 12-bit counter, shared by all threads so
  // that ids are ordered across them; the counter starts low in each new
  // millisecond and, should it run out, borrows the next one.
  static std::mutex mutex;
  static std::uint64_t last_ms = 0;
  static std::uint64_t counter = 0;
  std::uint64_t ms = 0, sequence = 0;
  {
    const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    std::lock_guard lock(mutex);
    if (static_cast<std::uint64_t>(now) > last_ms) {
      last_ms = static_cast<std::uint64_t>(now);
      counter = generator()() & 0x3FF;
    } else if (++counter > 0xFFF) {
      ++last_ms;
      counter = 0;
    }
    ms = last_ms;
    sequence = counter;
  }
  return format_uuid(((ms & 0xFFFFFFFFFFFFull) << 16) | sequence, generator()(), 7);
}

std::uint64_t stable_hash(std::string_view text) {
  std::uint64_t hash = 14695981039346656037ull;  // FNV-1a
  for (const unsigned char c : text) hash = (hash ^ c) * 1099511628211ull;
  return hash;
}

std::string stable_hash_hex(std::string_view text) {
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(stable_hash(text)));
  return out;
}

std::string stable_uuid(std::string_view text) {
  // Two differently salted hashes make the 122 bits; version 8 marks a
  // UUID made by courier's own rule.
  return format_uuid(stable_hash(text), stable_hash(std::string(text) + "\x01"), 8);
}

}  // namespace courier::util
