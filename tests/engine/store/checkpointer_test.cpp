#include "engine/store/checkpointer.h"

#include <boost/test/unit_test.hpp>

#include <sqlite3.h>
#include <unistd.h>

#include <filesystem>
#include <string>

using courier::store::Checkpointer;

namespace {

// A database in WAL mode with one table, written by `writer` one synced
// transaction at a time, as the store's writer writes.
struct WalDatabase {
  std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("courier-checkpointer-test-" + std::to_string(::getpid()));
  std::string path;
  sqlite3* writer = nullptr;

  WalDatabase() {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    path = (dir / "test.db").string();
    BOOST_REQUIRE_EQUAL(sqlite3_open(path.c_str(), &writer), SQLITE_OK);
    exec(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
        "CREATE TABLE t(id INTEGER PRIMARY KEY, body BLOB NOT NULL)");
  }
  ~WalDatabase() {
    sqlite3_close(writer);
    std::filesystem::remove_all(dir);
  }
  void exec(const std::string& sql) const {
    BOOST_REQUIRE_EQUAL(sqlite3_exec(writer, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  }
  // One commit of about ten pages.
  void commit(int i) const {
    exec("INSERT INTO t(id, body) VALUES(" + std::to_string(i) + ", zeroblob(40000))");
  }
  std::uintmax_t wal_bytes() const { return std::filesystem::file_size(path + "-wal"); }
  std::int64_t rows() const {
    sqlite3_stmt* q = nullptr;
    sqlite3_prepare_v2(writer, "SELECT count(*) FROM t", -1, &q, nullptr);
    sqlite3_step(q);
    const std::int64_t n = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
    return n;
  }
};

}  // namespace

BOOST_AUTO_TEST_SUITE(checkpointer)

BOOST_AUTO_TEST_CASE(the_log_starts_again_while_the_writer_goes_on) {
  WalDatabase db;
  constexpr int kThreshold = 100;  // pages
  {
    Checkpointer checkpointer(db.path, kThreshold);
    checkpointer.watch(db.writer);
    // 1,000 commits write some 10,000 pages: without checkpoints the log
    // would hold them all. The writer never waits for the checkpointer, so
    // how far the log runs past the threshold depends on the thread's
    // timing; it must come back to the start again and again.
    for (int i = 1; i <= 1000; ++i) {
      checkpointer.catch_up(db.writer);
      db.commit(i);
    }
    BOOST_TEST(db.wal_bytes() < 1000u * 10 * 4096 / 4);
    checkpointer.stop();
  }
  BOOST_TEST(db.rows() == 1000);
  // Everything in the log can be copied: nothing is left behind.
  int log = -1;
  int copied = -1;
  BOOST_REQUIRE_EQUAL(
      sqlite3_wal_checkpoint_v2(db.writer, nullptr, SQLITE_CHECKPOINT_TRUNCATE, &log, &copied), SQLITE_OK);
  BOOST_TEST(log == 0);
}

BOOST_AUTO_TEST_CASE(sqlite_no_longer_checkpoints_on_its_own) {
  WalDatabase db;
  Checkpointer checkpointer(db.path, 4000);
  checkpointer.watch(db.writer);
  // Some 1,500 pages: past SQLite's own threshold of 1,000, short of ours.
  for (int i = 1; i <= 150; ++i) {
    checkpointer.catch_up(db.writer);
    db.commit(i);
  }
  checkpointer.stop();
  // Had the log started again, it would have stopped growing at 1,000 pages.
  BOOST_TEST(db.wal_bytes() >= 150u * 10 * 4096);
}

BOOST_AUTO_TEST_SUITE_END()
