// UUIDs for the ids of messages and resources courier writes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace courier::util {

// "3f2b…-…" in lower case, 36 characters.
std::string random_uuid();

// Ids that follow from their input, so that the same input always gets the
// same id (a repeat of a message, the same patient in two messages): a
// 64-bit FNV-1a hash, in hex, and a UUID-shaped form of it.
std::uint64_t stable_hash(std::string_view text);
std::string stable_hash_hex(std::string_view text);
std::string stable_uuid(std::string_view text);

}  // namespace courier::util
