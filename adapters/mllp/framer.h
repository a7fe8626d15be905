// MLLP framing: a message travels as 0x0B, the message, 0x1C 0x0D. The
// framer takes bytes as they arrive and hands back whole messages; it is
// separate from the socket code so that it can be fuzzed and tested alone.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace courier::adapters::mllp {

inline constexpr char kStartBlock = 0x0B;
inline constexpr char kEndBlock = 0x1C;
inline constexpr char kCarriageReturn = 0x0D;

// Wraps a message in its frame.
std::string frame(std::string_view message);

class Framer {
 public:
  explicit Framer(std::size_t max_message_bytes) : max_message_bytes_(max_message_bytes) {}

  enum class Event {
    need_more,  // everything given is consumed; feed more bytes
    message,    // a whole message is ready: take_message()
    oversized,  // a message grew past the limit: the connection should close
  };

  // Consumes bytes from `data` until a message completes or data runs out;
  // `consumed` says how many were used. Bytes outside a frame are skipped.
  Event feed(std::string_view data, std::size_t& consumed);
  std::string take_message();

  // A frame has begun and not ended.
  bool inside_frame() const { return inside_; }

  // What feeding has thrown away since the last call: bytes between frames
  // (other than the CR or LF some peers send after a frame), and frames cut
  // short by the start of another. For the log: the peer should hear of it
  // from its operator, since it cannot from an ACK.
  struct Discarded {
    std::size_t stray_bytes = 0;
    std::size_t cut_frames = 0;
  };
  Discarded take_discarded();

 private:
  std::size_t max_message_bytes_;
  std::string buffer_;
  std::string ready_;
  bool inside_ = false;
  bool saw_end_block_ = false;
  Discarded discarded_;
};

}  // namespace courier::adapters::mllp
