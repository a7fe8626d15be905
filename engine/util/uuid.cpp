#include "engine/util/uuid.h"

#include <cstdint>
#include <random>

namespace courier::util {

std::string random_uuid() {
  // One generator per thread, seeded from the system's entropy.
  thread_local std::mt19937_64 generator{(std::random_device{}() * 0x9E3779B97F4A7C15ull) ^
                                         std::random_device{}()};
  std::uint64_t high = generator();
  std::uint64_t low = generator();
  high = (high & ~0xF000ull) | 0x4000ull;            // version 4
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

}  // namespace courier::util
