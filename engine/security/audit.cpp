#include "engine/security/audit.h"

#include <boost/asio/steady_timer.hpp>

#include <deque>
#include <mutex>

namespace courier::security {

namespace {

constexpr auto kBatchDelay = std::chrono::milliseconds(200);
// Records per batch: bounds what a backlog holds at once.
constexpr std::size_t kBatchLimit = 1000;
// Entries per store job: the store interleaves these with acknowledgments.
constexpr std::size_t kChunk = 32;

}  // namespace

rest::AuditEntry audit_entry(const AuditRecord& r) {
  rest::AuditEntry e;
  e.at = r.at != 0 ? r.at : store::now_millis();
  e.kind = r.kind;
  e.subtype = r.subtype;
  e.action = r.action;
  e.outcome = r.outcome;
  e.outcome_text = r.outcome_text;
  e.agent = r.by_courier ? "courier" : r.peer ? r.peer->name : "anonymous";
  e.by_courier = r.by_courier;
  if (r.peer && !r.by_courier) e.authenticated_by = r.peer->authenticated_by;
  e.address = r.address;
  e.listener = r.listener;
  e.entities = r.entities;
  e.message_id = r.message_id;
  return e;
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
    std::vector<rest::AuditEntry> entries;
    entries.reserve(records.size());
    for (const AuditRecord& r : records) entries.push_back(audit_entry(r));
    // Every chunk is appended, in order; the last one's commit arms the
    // next batch.
    const std::size_t chunks = (entries.size() + kChunk - 1) / kChunk;
    for (std::size_t c = 0; c < chunks; ++c) {
      const auto begin = entries.begin() + static_cast<std::ptrdiff_t>(c * kChunk);
      const auto end = c + 1 == chunks ? entries.end() : begin + static_cast<std::ptrdiff_t>(kChunk);
      std::shared_ptr<Impl> self = last || c + 1 < chunks ? nullptr : shared_from_this();
      store_.append_audit({std::make_move_iterator(begin), std::make_move_iterator(end)},
                          [self = std::move(self)] {
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
