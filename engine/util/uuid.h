// Random (version 4) UUIDs for the ids of messages courier writes.
#pragma once

#include <string>

namespace courier::util {

// "3f2b…-…" in lower case, 36 characters.
std::string random_uuid();

}  // namespace courier::util
