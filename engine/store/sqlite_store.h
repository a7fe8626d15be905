// The embedded store: SQLite in the data directory, WAL mode, group commit.
// One writer thread takes every queued write, runs as many as are waiting in
// one transaction, commits with a full sync, and only then runs their
// callbacks: many messages per fsync, no callback before its fsync.
#pragma once

#include <memory>
#include <string>

#include "engine/store/store.h"

namespace courier::store {

// Opens (creating if needed) <data_dir>/courier.db; throws std::runtime_error
// when the database cannot be opened.
std::unique_ptr<Store> open_sqlite_store(const std::string& data_dir);

}  // namespace courier::store
