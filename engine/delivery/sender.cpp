#include "engine/delivery/sender.h"

#include "engine/fhir/operation_outcome.h"

namespace courier::delivery {

void classify_status(SendOutcome& outcome, bool message_exchange) {
  using Kind = SendOutcome::Kind;
  const int status = outcome.status;
  const bool success = status >= 200 && status < 300;
  if (success && !message_exchange) {
    outcome.kind = Kind::done;
  } else if (status == 202) {
    outcome.kind = Kind::accepted;
  } else if (success) {
    outcome.kind = outcome.body.empty() ? Kind::done : Kind::response;
  } else if (status == 408 || status == 429 || status >= 500 || (status == 409 && !message_exchange)) {
    // A REST 409: another write came in between (FHIR's version conflict;
    // courier's transaction whose conditional write found a match appear).
    outcome.kind = Kind::transient;
    outcome.error = "HTTP " + std::to_string(status);
  } else {
    outcome.kind = Kind::fatal;
    outcome.error = "HTTP " + std::to_string(status) + fhir::outcome_summary(outcome.body, outcome.format);
  }
}

}  // namespace courier::delivery
