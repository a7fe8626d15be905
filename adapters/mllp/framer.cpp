#include "adapters/mllp/framer.h"

#include <utility>

namespace courier::adapters::mllp {

std::string frame(std::string_view message) {
  std::string out;
  out.reserve(message.size() + 3);
  out += kStartBlock;
  out += message;
  out += kEndBlock;
  out += kCarriageReturn;
  return out;
}

Framer::Event Framer::feed(std::string_view data, std::size_t& consumed) {
  consumed = 0;
  while (consumed < data.size()) {
    const char c = data[consumed++];
    if (!inside_) {
      // Between frames only a start block means anything; stray bytes
      // (a peer's keep-alive newline, noise) are skipped.
      if (c == kStartBlock) {
        inside_ = true;
        buffer_.clear();
      } else if (c != kCarriageReturn && c != '\n') {
        ++discarded_.stray_bytes;
      }
      continue;
    }
    if (saw_end_block_) {
      saw_end_block_ = false;
      if (c == kCarriageReturn) {
        inside_ = false;
        ready_ = std::move(buffer_);
        buffer_.clear();
        return Event::message;
      }
      // 0x1C not followed by CR is data (it cannot be in a v2 message, but
      // the receiver should say so, not the framer).
      buffer_ += kEndBlock;
    }
    if (c == kEndBlock) {
      saw_end_block_ = true;
      continue;
    }
    if (c == kStartBlock) {
      // A new frame before the old one ended: the old one is lost.
      buffer_.clear();
      ++discarded_.cut_frames;
      continue;
    }
    buffer_ += c;
    if (buffer_.size() > max_message_bytes_) return Event::oversized;
  }
  return Event::need_more;
}

std::string Framer::take_message() {
  return std::move(ready_);
}

Framer::Discarded Framer::take_discarded() {
  return std::exchange(discarded_, Discarded{});
}

}  // namespace courier::adapters::mllp
