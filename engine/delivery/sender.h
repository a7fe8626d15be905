// How the engine hands a message to a transport. Adapters implement Sender
// (adapters/http for messaging, adapters/file for folders); the engine only
// sees outcomes in FHIR's terms.
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "engine/fhir/codec.h"

namespace courier::delivery {

struct Outbound {
  std::string target;     // messaging: the URL to POST to; file: the folder
  std::string file_name;  // file: the name to write under
  std::string body;
  fhir::Format format = fhir::Format::json;
  std::chrono::milliseconds timeout{30'000};
};

struct SendOutcome {
  enum class Kind {
    response,   // the receiver answered with a message (body)
    done,       // delivered, no response message (HTTP 204, a file written)
    accepted,   // custody taken; the response comes later (HTTP 202)
    transient,  // worth retrying: refused, timed out, 5xx
    fatal       // rejected: 4xx; body may hold an OperationOutcome
  };
  Kind kind = Kind::transient;
  int status = 0;  // the HTTP status, when there was one
  std::string body;
  fhir::Format format = fhir::Format::json;
  std::string error;  // for a person; never message content
};

class Sender {
 public:
  virtual ~Sender() = default;
  // Sends; `done` runs exactly once, on any thread.
  virtual void send(Outbound message, std::function<void(SendOutcome)> done) = 0;
};

}  // namespace courier::delivery
