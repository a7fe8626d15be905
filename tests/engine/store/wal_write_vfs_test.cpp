#include "engine/store/wal_write_vfs.h"

#include <boost/test/unit_test.hpp>

#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <string>

using courier::store::wal_write_vfs;

namespace {

struct Dir {
  std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("courier-wal-vfs-test-" + std::to_string(::getpid()));
  Dir() {
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~Dir() { std::filesystem::remove_all(path); }
  std::string db() const { return (path / "test.db").string(); }
};

struct Connection {
  sqlite3* db = nullptr;
  explicit Connection(const std::string& path) {
    BOOST_REQUIRE_EQUAL(
        sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, wal_write_vfs()),
        SQLITE_OK);
  }
  ~Connection() { sqlite3_close(db); }
  int exec(const std::string& sql) const { return sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr); }
  std::int64_t single(const std::string& sql) const {
    sqlite3_stmt* q = nullptr;
    sqlite3_prepare_v2(db, sql.c_str(), -1, &q, nullptr);
    const std::int64_t value = sqlite3_step(q) == SQLITE_ROW ? sqlite3_column_int64(q, 0) : -1;
    sqlite3_finalize(q);
    return value;
  }
  std::string text(const std::string& sql) const {
    sqlite3_stmt* q = nullptr;
    sqlite3_prepare_v2(db, sql.c_str(), -1, &q, nullptr);
    std::string value;
    if (sqlite3_step(q) == SQLITE_ROW) value = reinterpret_cast<const char*>(sqlite3_column_text(q, 0));
    sqlite3_finalize(q);
    return value;
  }
};

// Runs `sql` on a new connection in a child process that then dies without
// closing anything, as a killed engine would: what SQLite wrote only to
// memory is lost. Fails the test unless every statement succeeded.
void commit_and_die(const std::string& db_path, const std::string& sql) {
  const pid_t child = ::fork();
  BOOST_REQUIRE(child >= 0);
  if (child == 0) {
    sqlite3* db = nullptr;
    sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READWRITE, wal_write_vfs());
    ::_exit(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK ? 0 : 1);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  BOOST_REQUIRE(WIFEXITED(status));
  BOOST_REQUIRE_EQUAL(WEXITSTATUS(status), 0);
}

void make_table(const Connection& c) {
  BOOST_REQUIRE_EQUAL(c.exec("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;"
                             "CREATE TABLE t(id INTEGER PRIMARY KEY, body BLOB NOT NULL)"),
                      SQLITE_OK);
}

}  // namespace

BOOST_AUTO_TEST_SUITE(wal_write_vfs_suite)

BOOST_AUTO_TEST_CASE(another_connection_sees_each_commit_whole) {
  Dir dir;
  Connection writer(dir.db());
  make_table(writer);
  Connection reader(dir.db());
  for (int i = 1; i <= 200; ++i) {
    // Several pages per commit, and now and then more than the buffer holds
    // (and more than one write of the underlying VFS may take).
    const int bytes = i % 50 == 0 ? 6 << 20 : 1000 * i;
    BOOST_REQUIRE_EQUAL(writer.exec("BEGIN; INSERT INTO t VALUES(" + std::to_string(i) + ", zeroblob(" +
                                    std::to_string(bytes) + ")); COMMIT"),
                        SQLITE_OK);
    BOOST_REQUIRE_EQUAL(reader.single("SELECT count(*) FROM t"), i);
    BOOST_REQUIRE_EQUAL(reader.single("SELECT length(body) FROM t WHERE id = " + std::to_string(i)), bytes);
  }
  BOOST_TEST(reader.text("PRAGMA integrity_check") == "ok");
}

BOOST_AUTO_TEST_CASE(a_commit_survives_the_process_that_made_it) {
  Dir dir;
  {
    Connection setup(dir.db());
    make_table(setup);
  }
  // Each commit's frames must be in the file, not in the process's memory,
  // when COMMIT returns.
  std::string sql = "PRAGMA synchronous = NORMAL;";
  for (int i = 1; i <= 300; ++i)
    sql += "INSERT INTO t VALUES(" + std::to_string(i) + ", zeroblob(" + std::to_string(i * 100) + "));";
  commit_and_die(dir.db(), sql);
  Connection after(dir.db());
  BOOST_TEST(after.single("SELECT count(*) FROM t") == 300);
  BOOST_TEST(after.single("SELECT sum(length(body)) FROM t") == 100 * 300 * 301 / 2);
}

BOOST_AUTO_TEST_CASE(the_log_is_read_back_by_its_writer) {
  Dir dir;
  Connection writer(dir.db());
  make_table(writer);
  // A transaction larger than SQLite's page cache spills frames to the log
  // before its commit, and reads them back.
  BOOST_REQUIRE_EQUAL(writer.exec("PRAGMA cache_size = 10"), SQLITE_OK);
  BOOST_REQUIRE_EQUAL(writer.exec("BEGIN"), SQLITE_OK);
  for (int i = 1; i <= 500; ++i)
    BOOST_REQUIRE_EQUAL(writer.exec("INSERT INTO t VALUES(" + std::to_string(i) + ", randomblob(3000))"),
                        SQLITE_OK);
  BOOST_REQUIRE_EQUAL(writer.exec("UPDATE t SET body = zeroblob(100) WHERE id % 2 = 0"), SQLITE_OK);
  BOOST_REQUIRE_EQUAL(writer.exec("COMMIT"), SQLITE_OK);
  Connection reader(dir.db());
  BOOST_TEST(reader.single("SELECT count(*) FROM t WHERE length(body) = 3000") == 250);
  BOOST_TEST(reader.single("SELECT count(*) FROM t WHERE length(body) = 100") == 250);
}

BOOST_AUTO_TEST_CASE(rewritten_frames_survive_the_process_that_made_them) {
  Dir dir;
  {
    Connection setup(dir.db());
    make_table(setup);
  }
  // A transaction larger than the page cache writes frames before its
  // commit, then writes some pages again: SQLite overwrites those frames
  // in place and, after the commit's last frame, rewrites the checksums of
  // every frame from the first one changed, the last header included. A
  // commit at NORMAL is not synced: all of that must be in the file when
  // COMMIT returns, or recovery stops at the stale checksum.
  commit_and_die(dir.db(),
                 "PRAGMA synchronous = NORMAL; PRAGMA cache_size = 10; BEGIN;"
                 "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 400)"
                 "  INSERT INTO t SELECT i, randomblob(3000) FROM n;"
                 "UPDATE t SET body = zeroblob(100) WHERE id % 2 = 0;"
                 "COMMIT;");
  Connection after(dir.db());
  BOOST_TEST(after.single("SELECT count(*) FROM t WHERE length(body) = 3000") == 200);
  BOOST_TEST(after.single("SELECT count(*) FROM t WHERE length(body) = 100") == 200);
}

BOOST_AUTO_TEST_CASE(padded_commits_are_whole_for_readers) {
  Dir dir;
  // Without powersafe overwrite, SQLite pads each synced commit to a sector
  // boundary with copies of its last frame, syncing in the middle of one.
  const std::string uri = "file:" + dir.db() + "?psow=0";
  sqlite3* writer = nullptr;
  BOOST_REQUIRE_EQUAL(
      sqlite3_open_v2(uri.c_str(), &writer, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_URI,
                      wal_write_vfs()),
      SQLITE_OK);
  BOOST_REQUIRE_EQUAL(sqlite3_exec(writer,
                                   "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                                   "CREATE TABLE t(id INTEGER PRIMARY KEY, body BLOB NOT NULL)",
                                   nullptr, nullptr, nullptr),
                      SQLITE_OK);
  {
    Connection reader(dir.db());
    for (int i = 1; i <= 50; ++i) {
      const std::string sql =
          "INSERT INTO t VALUES(" + std::to_string(i) + ", randomblob(" + std::to_string(i * 300) + "))";
      BOOST_REQUIRE_EQUAL(sqlite3_exec(writer, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
      BOOST_REQUIRE_EQUAL(reader.single("SELECT sum(length(body)) FROM t"), 300 * i * (i + 1) / 2);
    }
    BOOST_TEST(reader.text("PRAGMA integrity_check") == "ok");
  }
  sqlite3_close(writer);
}

BOOST_AUTO_TEST_SUITE_END()
