#include "engine/hl7v2/ack.h"

#include <algorithm>
#include <cctype>
#include <ctime>
#include <vector>

namespace courier::hl7v2 {
namespace {

AckCondition condition_of(std::string_view code, AckCondition absent) {
  if (code == "AL") return AckCondition::always;
  if (code == "NE") return AckCondition::never;
  if (code == "ER") return AckCondition::error_only;
  if (code == "SU") return AckCondition::success_only;
  return absent;
}

std::string_view code_text(AckCode code, bool commit) {
  switch (code) {
    case AckCode::accept: return commit ? "CA" : "AA";
    case AckCode::error: return commit ? "CE" : "AE";
    case AckCode::reject: return commit ? "CR" : "AR";
  }
  return "AR";
}

std::string_view error_name(int code) {
  switch (code) {
    case 100: return "Segment sequence error";
    case 101: return "Required field missing";
    case 102: return "Data type error";
    case 103: return "Table value not found";
    case 200: return "Unsupported message type";
    case 201: return "Unsupported event code";
    case 203: return "Unsupported version id";
    case 204: return "Unknown key identifier";
    case 206: return "Application record locked";
    default: return "Application internal error";
  }
}

// Versions before 2.5 carry the location and code in ERR-1; later ones in
// ERR-2 to ERR-4 and the text in ERR-8.
bool old_err_layout(std::string_view version) {
  return version.size() >= 3 && version.substr(0, 2) == "2." && version[2] >= '0' && version[2] < '5' &&
         (version.size() == 3 || version[3] == '.');
}

}  // namespace

std::string v2_time_now() {
  const std::time_t now = std::time(nullptr);
  std::tm local{};
  localtime_r(&now, &local);
  char out[32];
  std::strftime(out, sizeof out, "%Y%m%d%H%M%S%z", &local);
  return out;
}

AckRequest ack_request(const Message& message) {
  const std::string accept = message.header(15);
  const std::string application = message.header(16);
  AckRequest request;
  request.enhanced = !accept.empty() || !application.empty();
  if (request.enhanced) {
    request.accept = condition_of(accept, AckCondition::never);
    request.application = condition_of(application, AckCondition::never);
  }
  return request;
}

AckFacts ack_facts(const Message& message) {
  AckFacts facts;
  facts.delimiters = message.delimiters();
  const Segment& msh = message.segments().front();
  facts.sending_application = msh.raw(3);
  facts.sending_facility = msh.raw(4);
  facts.receiving_application = msh.raw(5);
  facts.receiving_facility = msh.raw(6);
  facts.control_id = message.control_id();
  facts.trigger = message.trigger_event();
  if (std::string processing = message.header(11); !processing.empty()) facts.processing_id = processing;
  if (std::string version = message.version(); !version.empty()) facts.version = version;
  return facts;
}

namespace {

// What an unreadable message's header says is echoed only in plain
// characters: it may be broken in any way, and the ACK must still read.
std::string plain(std::string_view text) {
  std::string out;
  for (const char c : text.substr(0, 64)) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == ' ' || c == '.' || c == '-' || c == '_' || c == ':' || c == '/' || c == '@')
      out += c;
  }
  return out;
}

// A header segment's fields (MSH, FHS, BHS), read without parsing it, for
// a message that may not parse: element k is field k + 2 (field 1 is the
// separator itself, line[3]).
std::vector<std::string_view> header_fields(std::string_view line) {
  std::vector<std::string_view> fields;
  if (line.size() < 4) return fields;
  const char separator = line[3];
  for (std::size_t start = 4;;) {
    const std::size_t next = line.find(separator, start);
    fields.push_back(
        line.substr(start, next == std::string_view::npos ? std::string_view::npos : next - start));
    if (next == std::string_view::npos) return fields;
    start = next + 1;
  }
}

// Field n (from 2) of what header_fields read, or "" when absent.
std::string_view header_field(const std::vector<std::string_view>& fields, std::size_t n) {
  return n >= 2 && n - 2 < fields.size() ? fields[n - 2] : std::string_view();
}

}  // namespace

std::string batch_reply_header(std::string_view header, std::string_view control_id,
                               std::string_view timestamp) {
  const char separator = header.size() > 3 ? header[3] : '|';
  const std::vector<std::string_view> parts = header_fields(header);
  const auto field = [&](std::size_t n) { return header_field(parts, n); };
  std::string out(header.substr(0, 3));
  // xHS-2 to xHS-12; 8 to 10 (security, batch name, comment) stay empty.
  const std::string_view fields[] = {field(2), field(5), field(6), field(3),   field(4), timestamp,
                                     "",       "",       "",       control_id, field(11)};
  for (const std::string_view value : fields) {
    out += separator;
    out += value;
  }
  return out;
}

AckFacts ack_facts_of_unreadable(std::string_view text) {
  AckFacts facts;
  const std::size_t end = text.find_first_of("\r\n");
  const std::string_view line = text.substr(0, end);
  if (line.size() < 9 || line.substr(0, 3) != "MSH") return facts;
  // Use the message's own delimiters when they look usable, else defaults.
  const char separator = line[3];
  if (std::isalnum(static_cast<unsigned char>(separator)) || separator < 0x20) return facts;
  const std::vector<std::string_view> fields = header_fields(line);
  const auto field = [&](std::size_t n) { return header_field(fields, n); };
  const std::string_view encoding = field(2);
  // Answer in the message's own delimiters only when they are a usable set;
  // otherwise the defaults, so the ACK itself can be read.
  if (encoding.size() >= 4) {
    const std::string set{separator, encoding[0], encoding[1], encoding[2], encoding[3]};
    const bool usable = std::all_of(set.begin(), set.end(), [&](char c) {
      const auto u = static_cast<unsigned char>(c);
      return std::ispunct(u) && std::count(set.begin(), set.end(), c) == 1;
    });
    if (usable) facts.delimiters = Delimiters{separator, encoding[0], encoding[1], encoding[2], encoding[3]};
  }
  facts.sending_application = plain(field(3));
  facts.sending_facility = plain(field(4));
  facts.receiving_application = plain(field(5));
  facts.receiving_facility = plain(field(6));
  const std::string_view type = field(9);
  if (const std::size_t caret = type.find(facts.delimiters.component); caret != std::string_view::npos) {
    facts.trigger =
        plain(type.substr(caret + 1, type.find(facts.delimiters.component, caret + 1) - caret - 1));
  }
  facts.control_id = plain(field(10));
  if (!plain(field(11)).empty()) facts.processing_id = plain(field(11));
  // A version courier does not know is answered in 2.5, which the sender can read.
  if (const std::string version = plain(field(12)); is_v2_version(version)) facts.version = version;
  return facts;
}

namespace {

// An ERR segment: where (segment ^ sequence ^ field, each left empty when
// unknown), the table 0357 code, the severity (E error, W warning) and the
// reason for a person (ERR-8).
void append_err(std::string& out, const AckFacts& facts, const ParseError& error, char severity) {
  const Delimiters& d = facts.delimiters;
  const char f = d.field;
  std::string segment, sequence, field;
  if (!error.segment_name.empty()) {
    segment = escape(error.segment_name, d);
    sequence = std::to_string(error.segment_index == 0 ? 1 : error.segment_index);
    if (error.field > 0) field = std::to_string(error.field);
  }
  const std::string c{d.component};
  out += "ERR";
  out += f;
  if (old_err_layout(facts.version)) {
    // ERR-1 (2.3, 2.4): segment ^ sequence ^ field ^ code as a CE in sub-components.
    const std::string s{d.subcomponent};
    out += segment + c + sequence + c + field + c + std::to_string(error.code) + s +
           escape(error_name(error.code), d) + s + "HL70357";
  } else {
    // ERR-2 location, ERR-3 code, ERR-4 severity, ERR-8 user message.
    out += f;
    out += segment.empty() ? std::string() : segment + c + sequence + (field.empty() ? "" : c + field);
    out += f;
    out += std::to_string(error.code) + c + escape(error_name(error.code), d) + c + "HL70357";
    out += f;
    out += severity;
    out += std::string(4, f);
    out += escape(error.reason, d);
  }
  out += '\r';
}

}  // namespace

std::string write_ack(const AckFacts& facts, const Ack& ack, std::string_view control_id,
                      std::string_view timestamp) {
  const Delimiters& d = facts.delimiters;
  const char f = d.field;
  std::string out = "MSH";
  out += f;
  out += {d.component, d.repetition, d.escape, d.subcomponent};
  if (d.truncation != 0) out += d.truncation;
  // The ACK goes back the other way: its sender is the message's receiver.
  for (const std::string_view part :
       {std::string_view(facts.receiving_application), std::string_view(facts.receiving_facility),
        std::string_view(facts.sending_application), std::string_view(facts.sending_facility), timestamp,
        std::string_view()}) {
    out += f;
    out += part;
  }
  out += f;
  out += "ACK";
  if (!facts.trigger.empty()) {
    out += d.component;
    out += escape(facts.trigger, d);
    out += d.component;
    out += "ACK";
  }
  out += f;
  out += escape(control_id, d);
  out += f;
  out += facts.processing_id;
  out += f;
  out += escape(facts.version, d);
  if (ack.asks_commit) {
    out += f;  // MSH-13
    out += f;  // MSH-14
    out += f;
    out += "AL";
    out += f;
    out += "NE";
  }
  out += '\r';

  out += "MSA";
  out += f;
  out += code_text(ack.code, ack.commit);
  out += f;
  out += escape(facts.control_id, d);
  if (!ack.text.empty()) {
    out += f;
    out += escape(ack.text.substr(0, 80), d);  // MSA-3 is 80 characters at most
  }
  out += '\r';

  if (ack.code != AckCode::accept) {
    ParseError error = ack.error != nullptr ? *ack.error : ParseError{};
    if (ack.error == nullptr) error.code = 207;
    error.reason = ack.text;
    append_err(out, facts, error, 'E');
  }
  for (const ParseError& warning : ack.warnings) append_err(out, facts, warning, 'W');
  return out;
}

ReceivedAck read_ack(const Message& message) {
  ReceivedAck ack;
  const Segment* msa = message.find("MSA");
  if (msa == nullptr) return ack;
  ack.code = message.value(*msa, 1);
  ack.acknowledged_id = message.value(*msa, 2);
  ack.text = message.value(*msa, 3);
  return ack;
}

}  // namespace courier::hl7v2
