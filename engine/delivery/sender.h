// How the engine hands a message to a transport. Adapters implement Sender
// (adapters/http for messaging, adapters/file for folders); the engine only
// sees outcomes in FHIR's terms.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "engine/fhir/codec.h"

namespace courier::delivery {

struct Outbound {
  // messaging and REST: the URL (REST to courier's embedded store: the path
  // after its base, "ServiceRequest?identifier=…"); file: the folder.
  std::string target;
  std::string file_name;  // file: the name to write under
  std::string method = "POST";
  std::vector<std::pair<std::string, std::string>> headers;  // beside the content headers
  // true: a FHIR message exchange, where a 2xx body is a response message;
  // false: a REST call, where any 2xx means done and its body is the
  // server's answer.
  bool message_exchange = true;
  std::string body;
  fhir::Format format = fhir::Format::json;
  std::chrono::milliseconds timeout{30'000};
};

struct SendOutcome {
  enum class Kind {
    response,   // the receiver answered with a message (body)
    done,       // delivered, no response message (HTTP 204, a REST 2xx, a file written)
    accepted,   // custody taken; the response comes later (HTTP 202)
    transient,  // worth retrying: refused, timed out, 5xx
    fatal       // rejected: 4xx; body may hold an OperationOutcome
  };
  Kind kind = Kind::transient;
  int status = 0;  // the HTTP status, when there was one
  std::string body;
  fhir::Format format = fhir::Format::json;
  std::string error;     // for a person; never message content
  std::string location;  // REST: the Location header of a create
};

// Sets `outcome.kind` (and `error`) from an HTTP answer's status and body:
// 202 accepted; 2xx a response message, or done when there is no body (in
// a REST call, any 2xx is done); 408, 429, 5xx (and a REST call's 409)
// transient; any other
// status fatal, with the OperationOutcome's first diagnostics in `error`.
void classify_status(SendOutcome& outcome, bool message_exchange);

class Sender {
 public:
  virtual ~Sender() = default;
  // Sends; `done` runs exactly once, on any thread.
  virtual void send(Outbound message, std::function<void(SendOutcome)> done) = 0;
  // Finishes what is queued and ends any thread of its own; called by the
  // thread that stops the engine. A sender's own thread must not be the one
  // that drops the engine's last reference (a callback it ran and still
  // holds): the engine's end would then wait for that very thread.
  virtual void stop() {}
};

}  // namespace courier::delivery
