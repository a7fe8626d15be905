// HL7 v2 messages as read from the wire: segments split into fields, kept
// in their escaped wire form so that writing an unchanged message gives back
// exactly the bytes that were read. Values are decoded (escapes, character
// set) only when asked for.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace courier::hl7v2 {

struct Delimiters {
  char field = '|';
  char component = '^';
  char repetition = '~';
  char escape = '\\';
  char subcomponent = '&';
  // MSH-2's fifth character (2.7 on, "#"), which courier does not use but
  // repeats in its replies; 0 when the message has none.
  char truncation = 0;
};

// The character sets MSH-18 may declare that courier reads.
enum class Charset { ascii, utf8, latin1 };

// One place in a message, in v2's own 1-based terms ("PID-5.1"). Zero means
// "the whole": field 0 is the segment, component 0 the repetition.
struct Position {
  std::size_t segment = 0;  // index into the message's segments, 0-based
  std::size_t field = 0;
  std::size_t repetition = 1;
  std::size_t component = 0;
  std::size_t subcomponent = 0;
};

struct ParseError {
  std::string reason;             // no patient data: says what, not which value
  std::size_t segment_index = 0;  // 1-based sequence of the segment at fault, 0 for the whole
  std::string segment_name;
  std::size_t field = 0;
  // HL7 table 0357 error code: 100 segment sequence, 101 required field
  // missing, 102 data type error, 203 unsupported version id, 207
  // application internal error.
  int code = 207;
};

struct Limits {
  std::size_t max_segments = 10'000;
  std::size_t max_segment_bytes = 1 << 20;
};

class Segment {
 public:
  Segment(std::vector<std::string> parts, bool is_header) : parts_(std::move(parts)), header_(is_header) {}

  std::string_view name() const { return parts_.front(); }
  // The highest field number present.
  std::size_t field_count() const;
  // A field as written on the wire (escaped, with its repetitions), or ""
  // when absent. MSH-1 is the field separator itself.
  std::string_view raw(std::size_t field) const;

  const std::vector<std::string>& parts() const { return parts_; }
  bool is_header() const { return header_; }

 private:
  // parts_[0] is the name; for MSH/FHS/BHS parts_[1] is MSH-2 (MSH-1 is the
  // separator between them).
  std::vector<std::string> parts_;
  bool header_ = false;
};

class Message {
 public:
  // Reads one message. Segment terminators may be CR, CRLF or LF.
  static std::optional<Message> parse(std::string_view text, ParseError& error, const Limits& limits = {});

  const Delimiters& delimiters() const { return delimiters_; }
  Charset charset() const { return charset_; }
  const std::vector<Segment>& segments() const { return segments_; }
  std::vector<Segment>& segments() { return segments_; }

  // The first segment with this name, or null.
  const Segment* find(std::string_view name) const;

  // A decoded value, as UTF-8: "PID-5.1" is value(pid, 5, 1, 1). Component
  // and subcomponent 0 mean the whole repetition or component, undecoded
  // separators included (then only escapes are decoded within).
  std::string value(const Segment& segment, std::size_t field, std::size_t repetition = 1,
                    std::size_t component = 1, std::size_t subcomponent = 1) const;
  // The same place as written on the wire (escaped); 0 for the whole
  // repetition or component.
  std::string_view raw_value(const Segment& segment, std::size_t field, std::size_t repetition,
                             std::size_t component, std::size_t subcomponent) const;
  // How many repetitions a field has (0 when empty).
  std::size_t repetitions(const Segment& segment, std::size_t field) const;

  // Shortcuts on MSH.
  std::string header(std::size_t field, std::size_t component = 1) const;
  std::string control_id() const { return header(10); }
  std::string version() const { return header(12); }
  // "ADT^A01^ADT_A01" → type ADT, trigger A01, structure ADT_A01 (derived
  // from type and trigger when MSH-9.3 is empty).
  std::string message_type() const { return header(9, 1); }
  std::string trigger_event() const { return header(9, 2); }
  std::string structure() const;

  // The message as it is now, segments ended as they were read.
  std::string write() const;

 private:
  Delimiters delimiters_;
  Charset charset_ = Charset::ascii;
  std::string terminator_ = "\r";
  bool trailing_terminator_ = true;
  std::vector<Segment> segments_;
};

// Decodes escape sequences (\F\ \S\ \T\ \R\ \E\, \Xhh..\, \.br\) with these
// delimiters; highlighting (\H\ \N\) is dropped, anything unknown is kept as
// it was written.
std::string unescape(std::string_view text, const Delimiters& delimiters);
std::string escape(std::string_view text, const Delimiters& delimiters);

// A batch (FHS/BHS … BTS/FTS) or a single message: the messages found, and
// the batch envelope segments as they were, for writing back.
struct Batch {
  std::vector<std::string> envelope_before;  // FHS, BHS
  std::vector<Message> messages;
  std::vector<std::string> envelope_after;  // BTS, FTS
  std::string terminator = "\r";
  bool trailing_terminator = true;
};
std::optional<Batch> parse_batch(std::string_view text, ParseError& error, const Limits& limits = {});
std::string write_batch(const Batch& batch);
bool is_batch(std::string_view text);

// "2." and a digit: a version MSH-12 may name. 2.3 to 2.8 are what the maps
// cover; older and newer ones are read the same way rather than refused.
bool is_v2_version(std::string_view version);

}  // namespace courier::hl7v2
