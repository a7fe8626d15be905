// UUIDs for the ids of messages and resources courier writes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace courier::util {

// "3f2b…-…" in lower case, 36 characters.
std::string random_uuid();

// A UUID version 7 (RFC 9562): the time in milliseconds, then a counter,
// then random bits, so that ids made later sort later. Ids of resources
// courier creates in bulk (AuditEvents, server-assigned REST ids) are
// made so: each table and index keyed by id then grows at its end instead
// of at a random page, which is most of the cost of storing them.
std::string time_ordered_uuid();

// Ids that follow from their input, so that the same input always gets the
// same id (a repeat of a message, the same patient in two messages): a
// 64-bit FNV-1a hash, in hex, and a UUID-shaped form of it.
std::uint64_t stable_hash(std::string_view text);
std::string stable_hash_hex(std::string_view text);
std::string stable_uuid(std::string_view text);

}  // namespace courier::util
