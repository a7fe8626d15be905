// libFuzzer target: bytes from an MLLP peer, fed to the framer in chunks
// whose sizes the input's first byte chooses. Whatever arrives, the framer
// must hand back only whole frames no larger than its limit.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "adapters/mllp/framer.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::size_t chunk = 1 + data[0] % 64;
  std::string_view rest(reinterpret_cast<const char*>(data) + 1, size - 1);
  courier::adapters::mllp::Framer framer(4096);
  while (!rest.empty()) {
    std::string_view piece = rest.substr(0, chunk);
    rest.remove_prefix(piece.size());
    while (!piece.empty()) {
      std::size_t used = 0;
      const auto event = framer.feed(piece, used);
      if (used == 0 && event == courier::adapters::mllp::Framer::Event::need_more) __builtin_trap();
      piece.remove_prefix(used);
      if (event == courier::adapters::mllp::Framer::Event::oversized) return 0;
      if (event == courier::adapters::mllp::Framer::Event::message && framer.take_message().size() > 4096) {
        __builtin_trap();
      }
    }
  }
  return 0;
}
