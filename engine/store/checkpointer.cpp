#include "engine/store/checkpointer.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <cstdlib>
#include <sqlite3.h>

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
  sqlite3_exec(db_, "PRAGMA synchronous = NORMAL", nullptr, nullptr, nullptr);
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "store-ckpt");
    if (getenv("XIOPRIO")) syscall(SYS_ioprio_set, 1, 0, (atoi(getenv("XIOPRIO")) << 13) | 7);
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

void Checkpointer::catch_up(sqlite3* writer) {
  if (finished_.exchange(false))
    sqlite3_wal_checkpoint_v2(writer, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
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
    sqlite3_wal_checkpoint_v2(db_, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
    {
      std::lock_guard lock(mutex_);
      running_ = false;
    }
    finished_ = true;
  }
}

}  // namespace courier::store
