#include "engine/security/audit.h"

#include <boost/asio/steady_timer.hpp>

#include <deque>
#include <mutex>

#include "engine/fhir/codec.h"
#include "engine/rest/search.h"
#include "engine/util/uuid.h"

namespace courier::security {

namespace {

constexpr const char* kPeerSystem = "http://courier.example/fhir/peers";
constexpr const char* kSubtypeSystem = "http://courier.example/fhir/CodeSystem/audit-subtype";
constexpr auto kBatchDelay = std::chrono::milliseconds(200);
// Records per batch: bounds what a backlog holds as resources at once.
constexpr std::size_t kBatchLimit = 1000;
// Records per store job: the store interleaves these with acknowledgments.
constexpr std::size_t kChunk = 32;

void add_coding(fhir::Element& coding, const char* system, std::string code, const char* display = nullptr) {
  coding.add_value("system", system);
  coding.add_value("code", std::move(code));
  if (display != nullptr) coding.add_value("display", display);
}

void add_event_type(fhir::Element& event, AuditRecord::Kind kind, std::string_view subtype) {
  fhir::Element& type = event.add("type");
  if (kind == AuditRecord::Kind::rest)
    return add_coding(type, "http://terminology.hl7.org/CodeSystem/audit-event-type", "rest",
                      "RESTful Operation");
  if (kind == AuditRecord::Kind::operator_)
    return add_coding(type, "http://dicom.nema.org/resources/ontology/DCM", "110100", "Application Activity");
  // A message coming in is an import; one going out, an export.
  const bool outgoing = subtype == "delivered" || subtype == "parked" || subtype == "retry" ||
                        subtype == "relayed" || subtype == "failed";
  add_coding(type, "http://dicom.nema.org/resources/ontology/DCM", outgoing ? "110106" : "110107",
             outgoing ? "Export" : "Import");
}

void add_agent(fhir::Element& event, const AuditRecord& r) {
  const std::string name = r.by_courier ? "courier" : r.peer ? r.peer->name : "anonymous";
  fhir::Element& agent = event.add("agent");
  fhir::Element& who = agent.add("who");
  fhir::Element& identifier = who.add("identifier");
  identifier.add_value("system", kPeerSystem);
  identifier.add_value("value", name);
  who.add_value("display", name);
  agent.add_value("altId", name);
  agent.add_value("name", name);
  agent.add_value("requestor", r.by_courier ? "false" : "true");
  if (r.peer && !r.by_courier)
    agent.add_value("policy", "urn:courier:authenticated-by:" + r.peer->authenticated_by);
  if (!r.address.empty()) {
    fhir::Element& network = agent.add("network");
    network.add_value("address", r.address);
    network.add_value("type", "2");  // 2: IP address
  }
}

}  // namespace

// Built as elements, not as JSON text to parse again: a busy engine
// records a few of these for every message.
fhir::Element audit_event(const AuditRecord& r, const std::string& id) {
  fhir::Element event = fhir::Element::resource("AuditEvent");
  event.add_value("id", id);
  add_event_type(event, r.kind, r.subtype);
  add_coding(event.add("subtype"), kSubtypeSystem, r.subtype);
  event.add_value("action", std::string(1, r.action));
  event.add_value("recorded", store::iso_time(r.at != 0 ? r.at : store::now_millis()));
  event.add_value("outcome", std::to_string(r.outcome));
  if (!r.outcome_text.empty()) event.add_value("outcomeDesc", r.outcome_text);
  add_agent(event, r);
  fhir::Element& source = event.add("source");
  source.add_value("site", r.listener.empty() ? "courier" : "courier listener " + r.listener);
  source.add("observer").add_value("display", "courier");
  add_coding(source.add("type"), "http://terminology.hl7.org/CodeSystem/security-source-type", "4",
             "Application Server");
  for (const std::string& reference : r.entities)
    event.add("entity").add("what").add_value("reference", reference);
  if (!r.message_id.empty()) {
    fhir::Element& entity = event.add("entity");
    fhir::Element& identifier = entity.add("what").add("identifier");
    identifier.add_value("system", "urn:ietf:rfc:3986");
    identifier.add_value("value", r.message_id);
    add_coding(entity.add("type"), "http://hl7.org/fhir/resource-types", "Bundle");
  }
  return event;
}

class AuditTrail::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(boost::asio::any_io_executor executor, rest::ResourceStore& store) : timer_(executor), store_(store) {}

  void record(AuditRecord record) {
    if (record.at == 0) record.at = store::now_millis();
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    pending_.push_back(std::move(record));
    arm();
  }

  // A batch a moment from now, unless one is due or still being written
  // (whose end arms the next): while the store is busy, records wait here,
  // small, rather than as resources queued in the store.
  void arm() {
    if (armed_ || writing_ || stopped_) return;
    armed_ = true;
    // A full batch goes at once; the store is not waiting for anything else.
    timer_.expires_after(pending_.size() >= kBatchLimit ? std::chrono::milliseconds(0) : kBatchDelay);
    timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
      if (!ec) self->write_pending(false);
    });
  }

  void write_pending(bool last) {
    // One batch at a time: stop() waits here for a timer's batch in flight,
    // so that nothing is written after the store closes.
    std::lock_guard building(write_mutex_);
    std::vector<AuditRecord> records;
    {
      std::lock_guard lock(mutex_);
      armed_ = false;
      // At most a batch's worth; the rest waits for the next (all of it at the last).
      const std::size_t n = last ? pending_.size() : std::min(pending_.size(), kBatchLimit);
      records.assign(std::make_move_iterator(pending_.begin()),
                     std::make_move_iterator(pending_.begin() + static_cast<std::ptrdiff_t>(n)));
      pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(n));
      writing_ = !records.empty();
    }
    if (records.empty()) return;
    std::vector<rest::Write> writes;
    writes.reserve(records.size());
    for (const AuditRecord& r : records) {
      rest::Write w;
      w.kind = rest::Write::Kind::create;
      w.type = "AuditEvent";
      w.id = util::time_ordered_uuid();
      w.resource = audit_event(r, w.id);
      w.index = rest::index_entries(*w.resource);
      w.background = true;
      writes.push_back(std::move(w));
    }
    // Creates with fresh ids cannot conflict: every chunk is written, in
    // order; the last one's commit arms the next batch.
    const std::size_t chunks = (writes.size() + kChunk - 1) / kChunk;
    if (chunks == 0) {
      std::lock_guard lock(mutex_);
      writing_ = false;
      return;
    }
    for (std::size_t c = 0; c < chunks; ++c) {
      const auto begin = writes.begin() + static_cast<std::ptrdiff_t>(c * kChunk);
      const auto end = c + 1 == chunks ? writes.end() : begin + static_cast<std::ptrdiff_t>(kChunk);
      std::shared_ptr<Impl> self = last || c + 1 < chunks ? nullptr : shared_from_this();
      store_.write_all({std::make_move_iterator(begin), std::make_move_iterator(end)},
                       [self = std::move(self)](std::vector<rest::WriteResult>) {
                         if (!self) return;
                         std::lock_guard lock(self->mutex_);
                         self->writing_ = false;
                         if (!self->pending_.empty()) self->arm();
                       });
    }
  }

  void stop() {
    {
      std::lock_guard lock(mutex_);
      stopped_ = true;
      timer_.cancel();
    }
    write_pending(true);
  }

 private:
  std::mutex write_mutex_;
  std::mutex mutex_;  // pending_, armed_, stopped_, timer_
  std::deque<AuditRecord> pending_;
  bool armed_ = false;
  bool writing_ = false;  // a batch is with the store
  bool stopped_ = false;
  boost::asio::steady_timer timer_;
  rest::ResourceStore& store_;
};

AuditTrail::AuditTrail(boost::asio::any_io_executor executor, rest::ResourceStore& store)
    : impl_(std::make_shared<Impl>(std::move(executor), store)) {}

AuditTrail::~AuditTrail() = default;

void AuditTrail::record(AuditRecord record) {
  impl_->record(std::move(record));
}

void AuditTrail::stop() {
  impl_->stop();
}

}  // namespace courier::security
