// The engine: takes messages from listeners, routes them, stores them
// durably, delivers them through senders, and correlates what comes back
// (responses, progress messages) with the request they answer, relaying it
// to the placer. Transport-neutral: listeners call accept(), senders are
// handed in.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <nlohmann/json_fwd.hpp>

#include "engine/admission.h"
#include "engine/delivery/sender.h"
#include "engine/fhir/codec.h"
#include "engine/metrics.h"
#include "engine/operator_view.h"
#include "engine/rest/rest_api.h"
#include "engine/route/route.h"
#include "engine/store/store.h"

namespace courier {

namespace hl7v2 {
class MapSet;
}
namespace security {
class Security;
struct AuditRecord;
}  // namespace security

struct EngineOptions {
  // courier's FHIR base as peers reach it: where async fillers send
  // responses, and the source of the messages courier writes.
  std::string public_url = "http://localhost:8080/fhir";
  // How long message identities are remembered for reliable messaging.
  std::chrono::milliseconds reliable_cache{std::chrono::minutes(10)};
  // A known MessageHeader.id under a new Bundle.id: reprocess, or reject.
  bool reprocess_reused_header = false;
  // How long a synchronous placer waits for the filler's first response
  // before it gets 202 and the response asynchronously.
  std::chrono::milliseconds sync_wait{std::chrono::seconds(30)};
  // Relaying responses and progress messages back to placers.
  route::RetryPolicy relay_retry{10, std::chrono::milliseconds(1000), std::chrono::milliseconds(300'000)};
  // Subscription notifications: tries in a row before the subscription is
  // set to status error.
  route::RetryPolicy notification_retry{6, std::chrono::milliseconds(1000),
                                        std::chrono::milliseconds(60'000)};
  fhir::ParseLimits limits;
  // Forward deliveries of one route's destination held in memory; the rest
  // of its backlog waits in the store only, read back as it drains.
  std::size_t deliveries_in_memory = 1000;
  // The HL7 v2 <-> FHIR maps, for the MLLP listeners and senders (null when
  // none are loaded).
  std::shared_ptr<const hl7v2::MapSet> v2_maps;
  // The known peers and token issuer (null when the config has no
  // security section).
  std::shared_ptr<const security::Security> security;
};

// What the operator's console shows about the running process; `courier
// run` sets it once its listeners are bound.
struct OperatorInfo {
  std::string version;
  store::Millis started_at = 0;
  std::vector<std::pair<std::string, std::string>> listeners;  // name, description
  // The route and config files checked again as they are on disk now, and
  // the routes' test cases run: {"problems": [...], "tests": [...]}.
  std::function<nlohmann::json()> route_report;
  // Prunes finished conversations past the configured retention; returns
  // how many.
  std::function<std::int64_t()> prune;
};

class Engine {
 public:
  using Senders = std::map<route::Pattern, std::shared_ptr<delivery::Sender>>;

  Engine(boost::asio::any_io_executor executor, EngineOptions options, route::RouteSet routes,
         std::unique_ptr<store::Store> store, Senders senders);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Before start(): the URL peers reach courier's FHIR base at.
  void set_public_url(std::string url);

  // Resumes every unfinished delivery and its timers.
  void start();
  // Cancels timers and closes the store; deliveries in flight stay pending
  // in the store and resume at the next start.
  void stop();

  // Takes a message; `done` runs once, on any thread, with the answer.
  void accept(Inbound message, std::function<void(Reply)> done);

  // The embedded FHIR REST store (the queue server): `done` runs once, on
  // any thread. What peers write here can report on requests courier
  // carried (resources whose basedOn points at them).
  void rest(rest::RestRequest request, std::function<void(rest::RestResponse)> done);

  // Adds an access to the audit trail (messages are audited by the engine).
  void audit(security::AuditRecord record);

  // Sends a parked delivery again, with a fresh set of attempts.
  bool replay(store::Id delivery, std::string& error);
  // Tries a pending delivery now instead of at its next retry.
  bool retry_now(store::Id delivery, std::string& error);
  // Cancels a request as its placer would through its Task: undelivered
  // deliveries are withdrawn and the destinations that have it are told.
  bool cancel(store::Id conversation, std::string& error);

  // The operator's live view.
  ChangeFeed& changes();
  const LatencyHistory& latency() const;
  void set_operator_info(OperatorInfo info);
  const OperatorInfo& operator_info() const;

  // The CapabilityStatement for GET [base]/metadata.
  fhir::Element capability_statement() const;
  // The MessageDefinition of a route's messages (named in the
  // CapabilityStatement), for GET [base]/MessageDefinition/NAME.
  std::optional<fhir::Element> message_definition(std::string_view route_name) const;

  Metrics& metrics();
  store::Store& store();
  const route::RouteSet& routes() const;
  const EngineOptions& options() const;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace courier
