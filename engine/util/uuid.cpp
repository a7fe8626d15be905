#include "engine/util/uuid.h"

#include <cstdint>
#include <cstdio>
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

}  // namespace

std::string random_uuid() {
  // One generator per thread, seeded from the system's entropy.
  thread_local std::mt19937_64 generator{(std::random_device{}() * 0x9E3779B97F4A7C15ull) ^
                                         std::random_device{}()};
  const std::uint64_t high = generator();
  return format_uuid(high, generator(), 4);
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
