// Checkpoints of the SQLite store, off the writer's thread.
//
// A checkpoint copies the write-ahead log back into the database file: some
// megabytes of scattered writes and two syncs. Run by SQLite after a commit,
// it held up the store's only writer, and every message waiting on it, for
// several milliseconds each time; here it runs beside the writer.
#pragma once

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

struct sqlite3;

namespace courier::store {

// Copies the log on a connection of its own, without stopping the writer
// (a passive checkpoint), when the writer reports that the log has grown
// past a threshold. SQLite starts the log again from its beginning only
// once a checkpoint has copied all of it, and the writer keeps appending
// while one runs: so the writer finishes the job itself, between two
// commits, with a short checkpoint of what it wrote meanwhile (catch_up).
class Checkpointer {
 public:
  Checkpointer(const std::string& db_path, int threshold_pages);
  ~Checkpointer();
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // Installs itself as `writer`'s WAL hook, which turns SQLite's automatic
  // checkpoints off.
  void watch(sqlite3* writer);
  // On the writer's thread, outside a transaction: after a background
  // checkpoint, copies what was committed since it began.
  void catch_up(sqlite3* writer);
  // No background checkpoint runs while the lock is held: one that must
  // not be refused (truncating the log) can run on the writer.
  [[nodiscard]] std::unique_lock<std::mutex> hold();
  void stop();

 private:
  static int on_commit(void* self, sqlite3* db, const char* name, int pages);
  void loop();

  const int threshold_pages_;
  sqlite3* db_ = nullptr;
  std::mutex mutex_;
  std::mutex pass_;  // held while a background checkpoint runs
  std::condition_variable wake_;
  bool requested_ = false;
  bool running_ = false;
  bool stopping_ = false;
  std::atomic<bool> finished_{false};
  std::thread thread_;
};

}  // namespace courier::store
