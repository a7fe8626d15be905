// HL7 v2 acknowledgments: the ACK a receiver writes back for a message, in
// original mode (AA/AE/AR) or enhanced mode's commit level (CA/CE/CR), with
// an ERR segment that says where and why when something was wrong.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "engine/hl7v2/message.h"

namespace courier::hl7v2 {

enum class AckCode { accept, error, reject };

// Which acknowledgments a message asked for (MSH-15 accept, MSH-16
// application): AL always, NE never, ER only on error, SU only on success.
enum class AckCondition { always, never, error_only, success_only };

struct AckRequest {
  bool enhanced = false;  // MSH-15 or MSH-16 present: enhanced mode
  AckCondition accept = AckCondition::never;
  AckCondition application = AckCondition::always;
};
AckRequest ack_request(const Message& message);

// The facts of a message an ACK echoes, read from a parsed message or,
// best effort, from one that could not be parsed.
struct AckFacts {
  Delimiters delimiters;
  std::string sending_application;  // MSH-3, as on the wire
  std::string sending_facility;     // MSH-4
  std::string receiving_application;
  std::string receiving_facility;
  std::string control_id;  // MSH-10, decoded
  std::string trigger;     // MSH-9.2
  std::string processing_id = "P";
  std::string version = "2.5";
};
AckFacts ack_facts(const Message& message);
AckFacts ack_facts_of_unreadable(std::string_view text);

struct Ack {
  AckCode code = AckCode::accept;
  bool commit = false;  // CA/CE/CR rather than AA/AE/AR
  std::string text;     // MSA-3 / ERR-8: no patient data
  // Where the problem is, with its table 0357 code, for AE/AR.
  const ParseError* error = nullptr;
  // Values the message was taken without (a date that is no date, a code
  // no map lists): ERR segments of severity W, whatever the code.
  std::vector<ParseError> warnings{};
  // An application ACK of enhanced mode, sent as a message of its own: it
  // asks its receiver for a commit ACK (MSH-15 AL, MSH-16 NE).
  bool asks_commit = false;
};

// The time now as HL7 v2 writes it (YYYYMMDDHHMMSS+ZZZZ, the host's offset).
std::string v2_time_now();

// The ACK message, segments ended with CR. `control_id` is the ACK's own
// MSH-10, `timestamp` its MSH-7 (YYYYMMDDHHMMSS+ZZZZ).
std::string write_ack(const AckFacts& facts, const Ack& ack, std::string_view control_id,
                      std::string_view timestamp);

// The header (FHS or BHS) of the reply to a batch, from the batch's own:
// sender and receiver swapped, the time `timestamp`, its own control id
// (xHS-11) and the batch's as the one it answers (xHS-12).
std::string batch_reply_header(std::string_view header, std::string_view control_id,
                               std::string_view timestamp);

// Reads an ACK another system sent: MSA-1 and MSA-2 (empty code when it is
// not an ACK).
struct ReceivedAck {
  std::string code;  // AA, AE, AR, CA, CE, CR
  std::string acknowledged_id;
  std::string text;
};
ReceivedAck read_ack(const Message& message);

}  // namespace courier::hl7v2
