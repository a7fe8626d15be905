#include "engine/store/checkpointer.h"

#include <pthread.h>
#include <sqlite3.h>

#include <iostream>
#include <stdexcept>

namespace courier::store {

Checkpointer::Checkpointer(const std::string& db_path, int threshold_pages)
    : threshold_pages_(threshold_pages) {
  if (sqlite3_open_v2(db_path.c_str(), &db_, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nullptr) !=
      SQLITE_OK) {
    const std::string message = db_ != nullptr ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    throw std::runtime_error("cannot open " + db_path + ": " + message);
  }
  // A checkpoint syncs the log before it copies it, and the database file
  // before the log may start again: unless synchronous is OFF.
  if (sqlite3_exec(db_, "PRAGMA synchronous = NORMAL", nullptr, nullptr, nullptr) != SQLITE_OK) {
    const std::string message = sqlite3_errmsg(db_);
    sqlite3_close(db_);
    throw std::runtime_error("cannot open " + db_path + ": " + message);
  }
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "store-ckpt");
    loop();
  });
}

Checkpointer::~Checkpointer() {
  stop();
  sqlite3_close(db_);
}

void Checkpointer::watch(sqlite3* writer) {
  sqlite3_wal_hook(writer, &Checkpointer::on_commit, this);
}

int Checkpointer::on_commit(void* self, sqlite3*, const char*, int pages) {
  auto& checkpointer = *static_cast<Checkpointer*>(self);
  if (pages < checkpointer.threshold_pages_) return SQLITE_OK;
  {
    std::lock_guard lock(checkpointer.mutex_);
    if (checkpointer.running_ || checkpointer.requested_) return SQLITE_OK;
    checkpointer.requested_ = true;
  }
  checkpointer.wake_.notify_one();
  return SQLITE_OK;
}

namespace {

// Busy is no failure: a reader or the other checkpoint was in the way, and
// the next one copies the rest.
void checkpoint(sqlite3* db) {
  const int rc = sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  if (rc != SQLITE_OK && rc != SQLITE_BUSY)
    std::cerr << "store: checkpoint failed: " << sqlite3_errstr(rc) << "\n";
}

}  // namespace

void Checkpointer::catch_up(sqlite3* writer) {
  if (finished_.exchange(false)) checkpoint(writer);
}

std::unique_lock<std::mutex> Checkpointer::hold() {
  return std::unique_lock(pass_);
}

void Checkpointer::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void Checkpointer::loop() {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [&] { return stopping_ || requested_; });
      if (stopping_) return;
      requested_ = false;
      running_ = true;
    }
    // A reader on an older snapshot may keep it from copying everything;
    // the log is then still long after the next commit, which asks again.
    {
      const std::lock_guard pass(pass_);
      checkpoint(db_);
    }
    {
      std::lock_guard lock(mutex_);
      running_ = false;
    }
    finished_ = true;
  }
}

}  // namespace courier::store
