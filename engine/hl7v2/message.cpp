#include "engine/hl7v2/message.h"

#include <algorithm>
#include <cctype>

#include "engine/util/text.h"

namespace courier::hl7v2 {
namespace {

bool is_header_name(std::string_view name) {
  return name == "MSH" || name == "FHS" || name == "BHS";
}

bool valid_segment_name(std::string_view name) {
  return name.size() == 3 && std::all_of(name.begin(), name.end(), [](char c) {
           return std::isupper(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c));
         });
}

// Splits on one character, keeping empty pieces.
std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> pieces;
  std::size_t start = 0;
  for (;;) {
    const std::size_t end = text.find(separator, start);
    pieces.push_back(
        text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start));
    if (end == std::string_view::npos) return pieces;
    start = end + 1;
  }
}

// The nth (1-based) piece of text split on separator, or "".
std::string_view piece(std::string_view text, char separator, std::size_t n) {
  std::size_t start = 0;
  for (std::size_t i = 1; i < n; ++i) {
    const std::size_t next = text.find(separator, start);
    if (next == std::string_view::npos) return {};
    start = next + 1;
  }
  const std::size_t end = text.find(separator, start);
  return text.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
}

std::size_t count_pieces(std::string_view text, char separator) {
  return text.empty() ? 0 : static_cast<std::size_t>(std::count(text.begin(), text.end(), separator)) + 1;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string latin1_to_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) util::append_utf8(out, static_cast<unsigned char>(c));
  return out;
}

Charset charset_of(std::string_view declared) {
  if (declared == "UNICODE UTF-8" || declared == "UTF-8") return Charset::utf8;
  if (declared == "8859/1") return Charset::latin1;
  return Charset::ascii;
}

// Segments of a message text, without their terminators; notes which
// terminator the text used and whether the last segment had one.
std::vector<std::string_view> split_segments(std::string_view text, std::string& terminator, bool& trailing) {
  std::vector<std::string_view> lines;
  terminator.clear();
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t end = text.find_first_of("\r\n", start);
    if (end == std::string_view::npos) {
      lines.push_back(text.substr(start));
      trailing = false;
      return lines;
    }
    const std::size_t length = text[end] == '\r' && end + 1 < text.size() && text[end + 1] == '\n' ? 2 : 1;
    if (terminator.empty()) terminator = std::string(text.substr(end, length));
    if (end > start) lines.push_back(text.substr(start, end - start));  // blank lines are tolerated
    start = end + length;
  }
  trailing = true;
  if (terminator.empty()) terminator = "\r";
  return lines;
}

ParseError error_at(std::string reason, std::size_t index, std::string_view name, std::size_t field,
                    int code) {
  // A name that is not a segment name is not echoed: it may be any bytes.
  const std::string_view segment = name.substr(0, 3);
  return ParseError{std::move(reason), index, valid_segment_name(segment) ? std::string(segment) : "", field,
                    code};
}

// Reads MSH-1 and MSH-2 (or FHS/BHS), checking they make a usable set.
bool read_delimiters(std::string_view line, Delimiters& delimiters, ParseError& error) {
  if (line.size() < 8) {
    error = error_at("the header segment is too short to carry its delimiters", 1, line, 1, 102);
    return false;
  }
  delimiters.field = line[3];
  const std::size_t end = line.find(delimiters.field, 4);
  const std::string_view encoding =
      line.substr(4, end == std::string_view::npos ? std::string_view::npos : end - 4);
  // 2.7 adds a fifth character (truncation); it is kept in MSH-2 and not used.
  if (encoding.size() < 4 || encoding.size() > 5) {
    error = error_at("MSH-2 must hold the four encoding characters", 1, line, 2, 102);
    return false;
  }
  delimiters.component = encoding[0];
  delimiters.repetition = encoding[1];
  delimiters.escape = encoding[2];
  delimiters.subcomponent = encoding[3];
  delimiters.truncation = encoding.size() == 5 ? encoding[4] : 0;
  std::string all{delimiters.field, delimiters.component, delimiters.repetition, delimiters.escape,
                  delimiters.subcomponent};
  if (delimiters.truncation != 0) all += delimiters.truncation;
  for (std::size_t i = 0; i < all.size(); ++i) {
    const auto c = static_cast<unsigned char>(all[i]);
    if (std::isalnum(c) || c < 0x20 || c >= 0x7f || all.find(all[i], i + 1) != std::string::npos) {
      error = error_at("the delimiters in MSH-1 and MSH-2 must be distinct printable punctuation", 1, line,
                       i == 0 ? 1 : 2, 102);
      return false;
    }
  }
  return true;
}

}  // namespace

std::size_t Segment::field_count() const {
  return header_ ? parts_.size() : parts_.size() - 1;
}

std::string_view Segment::raw(std::size_t field) const {
  if (field == 0) return {};
  if (header_) {
    if (field == 1) return {};  // the separator: ask the message's delimiters
    return field - 1 < parts_.size() ? std::string_view(parts_[field - 1]) : std::string_view();
  }
  return field < parts_.size() ? std::string_view(parts_[field]) : std::string_view();
}

std::optional<Message> Message::parse(std::string_view text, ParseError& error, const Limits& limits) {
  Message message;
  const std::vector<std::string_view> lines =
      split_segments(text, message.terminator_, message.trailing_terminator_);
  if (lines.empty() || lines.front().substr(0, 3) != "MSH") {
    error = error_at("the message does not begin with an MSH segment", 1, lines.empty() ? "" : lines.front(),
                     0, 100);
    return std::nullopt;
  }
  if (lines.size() > limits.max_segments) {
    error = error_at("the message has more segments than allowed", 0, "", 0, 207);
    return std::nullopt;
  }
  if (!read_delimiters(lines.front(), message.delimiters_, error)) return std::nullopt;
  const char separator = message.delimiters_.field;
  message.segments_.reserve(lines.size());
  for (std::size_t i = 0; i < lines.size(); ++i) {
    const std::string_view line = lines[i];
    if (line.size() > limits.max_segment_bytes) {
      error = error_at("a segment is longer than allowed", i + 1, line, 0, 207);
      return std::nullopt;
    }
    const std::string_view name = line.substr(0, 3);
    if (!valid_segment_name(name) || (line.size() > 3 && line[3] != separator)) {
      // Its name may be any bytes, so the ERR cannot name it: its place can.
      error = error_at("segment " + std::to_string(i + 1) +
                           " does not begin with a three-character name and the field separator",
                       i + 1, name, 0, 100);
      return std::nullopt;
    }
    if (i > 0 && name == "MSH") {
      error = error_at("a second MSH segment inside one message", i + 1, name, 0, 100);
      return std::nullopt;
    }
    const bool header = is_header_name(name);
    std::vector<std::string> parts;
    if (header) {
      // "MSH|^~\&|A" → ["MSH", "^~\&", "A"]: MSH-1 sits between name and MSH-2.
      parts.emplace_back(name);
      if (line.size() > 3) {
        for (const std::string_view part : split(line.substr(4), separator)) parts.emplace_back(part);
      }
    } else {
      for (const std::string_view part : split(line, separator)) parts.emplace_back(part);
    }
    message.segments_.emplace_back(std::move(parts), header);
  }
  message.charset_ = charset_of(message.header(18));
  const std::string_view raw_text = text;
  if (message.charset_ != Charset::latin1 && util::find_invalid_utf8(raw_text) != std::string_view::npos) {
    error = error_at("the message is not valid UTF-8 and MSH-18 declares no other character set", 1, "MSH",
                     18, 102);
    return std::nullopt;
  }
  if (message.header(9, 1).empty()) {
    error = error_at("MSH-9 (message type) is empty", 1, "MSH", 9, 101);
    return std::nullopt;
  }
  if (message.control_id().empty()) {
    error = error_at("MSH-10 (message control id) is empty", 1, "MSH", 10, 101);
    return std::nullopt;
  }
  if (!is_v2_version(message.version())) {
    error = error_at("MSH-12 must name an HL7 v2 version (2.x, such as 2.5.1)", 1, "MSH", 12, 203);
    return std::nullopt;
  }
  return message;
}

const Segment* Message::find(std::string_view name) const {
  for (const Segment& segment : segments_) {
    if (segment.name() == name) return &segment;
  }
  return nullptr;
}

std::string Message::value(const Segment& segment, std::size_t field, std::size_t repetition,
                           std::size_t component, std::size_t subcomponent) const {
  std::string_view text;
  if (segment.is_header() && field == 1) {
    text = std::string_view(&delimiters_.field, 1);
    return repetition == 1 && component <= 1 && subcomponent <= 1 ? std::string(text) : std::string();
  }
  text = segment.raw(field);
  // MSH-2 holds the delimiters themselves: no escapes, no components.
  if (segment.is_header() && field == 2) return repetition == 1 && component <= 1 ? std::string(text) : "";
  text = piece(text, delimiters_.repetition, repetition);
  if (component > 0) {
    text = piece(text, delimiters_.component, component);
    if (subcomponent > 0) text = piece(text, delimiters_.subcomponent, subcomponent);
  }
  std::string decoded = unescape(text, delimiters_);
  return charset_ == Charset::latin1 ? latin1_to_utf8(decoded) : decoded;
}

std::string_view Message::raw_value(const Segment& segment, std::size_t field, std::size_t repetition,
                                    std::size_t component, std::size_t subcomponent) const {
  if (segment.is_header() && field <= 2) return segment.is_header() && field == 2 ? segment.raw(2) : "";
  std::string_view text = piece(segment.raw(field), delimiters_.repetition, repetition);
  if (component == 0) return text;
  text = piece(text, delimiters_.component, component);
  return subcomponent == 0 ? text : piece(text, delimiters_.subcomponent, subcomponent);
}

std::size_t Message::repetitions(const Segment& segment, std::size_t field) const {
  if (segment.is_header() && field <= 2) return 1;
  return count_pieces(segment.raw(field), delimiters_.repetition);
}

std::string Message::header(std::size_t field, std::size_t component) const {
  return segments_.empty() ? std::string() : value(segments_.front(), field, 1, component, 1);
}

std::string Message::structure() const {
  std::string declared = header(9, 3);
  if (!declared.empty()) return declared;
  return message_type() + "_" + trigger_event();
}

std::string Message::write() const {
  std::string out;
  for (std::size_t i = 0; i < segments_.size(); ++i) {
    const Segment& segment = segments_[i];
    const std::vector<std::string>& parts = segment.parts();
    out += parts.front();
    for (std::size_t p = 1; p < parts.size(); ++p) {
      out += delimiters_.field;
      out += parts[p];
    }
    if (i + 1 < segments_.size() || trailing_terminator_) out += terminator_;
  }
  return out;
}

std::string unescape(std::string_view text, const Delimiters& delimiters) {
  if (text.find(delimiters.escape) == std::string_view::npos) return std::string(text);
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    const std::size_t close =
        c == delimiters.escape ? text.find(delimiters.escape, i + 1) : std::string_view::npos;
    if (close == std::string_view::npos) {
      out += c;
      ++i;
      continue;
    }
    const std::string_view code = text.substr(i + 1, close - i - 1);
    bool known = true;
    if (code == "F") {
      out += delimiters.field;
    } else if (code == "S") {
      out += delimiters.component;
    } else if (code == "T") {
      out += delimiters.subcomponent;
    } else if (code == "R") {
      out += delimiters.repetition;
    } else if (code == "E") {
      out += delimiters.escape;
    } else if (code == ".br") {
      out += '\n';
    } else if (code == "H" || code == "N") {
      // highlighting on and off: no meaning in plain text
    } else if (code.size() >= 3 && code.size() % 2 == 1 && code[0] == 'X' &&
               std::all_of(code.begin() + 1, code.end(), [](char h) { return hex_digit(h) >= 0; })) {
      for (std::size_t h = 1; h < code.size(); h += 2) {
        out += static_cast<char>(hex_digit(code[h]) * 16 + hex_digit(code[h + 1]));
      }
    } else {
      known = false;
    }
    if (known) {
      i = close + 1;
    } else {
      out += c;
      ++i;
    }
  }
  return out;
}

std::string escape(std::string_view text, const Delimiters& delimiters) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const char* code = nullptr;
    if (c == delimiters.escape) {
      code = "E";
    } else if (c == delimiters.field) {
      code = "F";
    } else if (c == delimiters.component) {
      code = "S";
    } else if (c == delimiters.subcomponent) {
      code = "T";
    } else if (c == delimiters.repetition) {
      code = "R";
    } else if (c == '\r' || c == '\n') {
      code = ".br";
    }
    if (code == nullptr) {
      out += c;
    } else {
      out += delimiters.escape;
      out += code;
      out += delimiters.escape;
    }
  }
  return out;
}

bool is_v2_version(std::string_view version) {
  return version.size() >= 3 && version.substr(0, 2) == "2." &&
         std::isdigit(static_cast<unsigned char>(version[2]));
}

bool is_batch(std::string_view text) {
  return text.substr(0, 3) == "FHS" || text.substr(0, 3) == "BHS";
}

std::optional<Batch> parse_batch(std::string_view text, ParseError& error, const Limits& limits) {
  Batch batch;
  bool trailing = true;
  const std::vector<std::string_view> lines = split_segments(text, batch.terminator, trailing);
  batch.trailing_terminator = trailing;
  std::size_t i = 0;
  while (i < lines.size() && (lines[i].substr(0, 3) == "FHS" || lines[i].substr(0, 3) == "BHS")) {
    batch.envelope_before.emplace_back(lines[i]);
    ++i;
  }
  while (i < lines.size() && lines[i].substr(0, 3) == "MSH") {
    std::size_t end = i + 1;
    while (end < lines.size() && lines[end].substr(0, 3) != "MSH" && lines[end].substr(0, 3) != "BTS" &&
           lines[end].substr(0, 3) != "FTS") {
      ++end;
    }
    std::string one;
    for (std::size_t k = i; k < end; ++k) {
      one += lines[k];
      one += '\r';
    }
    std::optional<Message> message = Message::parse(one, error, limits);
    if (!message) {
      error.segment_index += error.segment_index > 0 ? i : 0;
      return std::nullopt;
    }
    batch.messages.push_back(std::move(*message));
    i = end;
  }
  while (i < lines.size() && (lines[i].substr(0, 3) == "BTS" || lines[i].substr(0, 3) == "FTS")) {
    batch.envelope_after.emplace_back(lines[i]);
    ++i;
  }
  if (i < lines.size()) {
    error = error_at("a batch holds a segment outside any message", i + 1, lines[i], 0, 100);
    return std::nullopt;
  }
  return batch;
}

std::string write_batch(const Batch& batch) {
  std::vector<std::string> lines = batch.envelope_before;
  for (const Message& message : batch.messages) {
    std::string text = message.write();
    std::string terminator;
    bool trailing = true;
    for (const std::string_view line : split_segments(text, terminator, trailing)) lines.emplace_back(line);
  }
  lines.insert(lines.end(), batch.envelope_after.begin(), batch.envelope_after.end());
  std::string out;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    out += lines[i];
    if (i + 1 < lines.size() || batch.trailing_terminator) out += batch.terminator;
  }
  return out;
}

}  // namespace courier::hl7v2
