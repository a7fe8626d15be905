#include "engine/store/wal_write_vfs.h"

#include <sqlite3.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <new>
#include <stdexcept>
#include <string>

namespace courier::store {

namespace {

constexpr const char* kName = "courier-wal";
// A commit larger than this is written in pieces of this size.
constexpr std::size_t kMostBuffered = 4 << 20;
// The unix VFS writes at most 128 KB - 1 bytes in one call.
constexpr std::size_t kMostPerWrite = 64 << 10;
// A log frame begins with a header of this size; its bytes 4 to 7 (the
// database's size in pages after the commit) are not zero only in a
// commit's last frame. SQLite writes other 24-byte headers only when it
// rewrites checksums, after a commit's last frame.
constexpr int kFrameHeader = 24;

// A log file: SQLite's own file object, then ours around it.
//
// Only the frames of a transaction, appended one after another, gather in
// memory. From a commit's last frame on, every write goes to the file at
// once, until the next transaction starts (its first frame at the end of
// the log, or the log's header when SQLite starts it again): what SQLite
// writes after that frame (its page, padding frames and rewritten
// checksums, with a sync between them) is then in the file before SQLite
// publishes the commit to readers.
struct WalFile {
  sqlite3_file base;  // first: SQLite sees this
  sqlite3_file* real;
  std::string buffer;  // written from offset `start`, not yet to the file
  sqlite3_int64 start = 0;
  sqlite3_int64 end = 0;      // the log's end: past the last byte written
  bool after_commit = false;  // writes go through until the next transaction
};

constexpr std::size_t kRealOffset = (sizeof(WalFile) + 15) / 16 * 16;

WalFile& wal(sqlite3_file* file) {
  return *reinterpret_cast<WalFile*>(file);
}
sqlite3_file* real(sqlite3_file* file) {
  return wal(file).real;
}

// On failure, what was gathered is dropped: SQLite rolls the transaction
// back when a write to the log fails, and rewrites its frames if retried.
int flush(WalFile& w) {
  int rc = SQLITE_OK;
  for (std::size_t at = 0; at < w.buffer.size() && rc == SQLITE_OK; at += kMostPerWrite) {
    const std::size_t n = std::min(kMostPerWrite, w.buffer.size() - at);
    rc = w.real->pMethods->xWrite(w.real, w.buffer.data() + at, static_cast<int>(n),
                                  w.start + static_cast<sqlite3_int64>(at));
  }
  w.buffer.clear();
  return rc;
}

std::uint32_t database_pages(const void* frame_header) {
  const auto* bytes = static_cast<const unsigned char*>(frame_header);
  return static_cast<std::uint32_t>(bytes[4]) << 24 | static_cast<std::uint32_t>(bytes[5]) << 16 |
         static_cast<std::uint32_t>(bytes[6]) << 8 | bytes[7];
}

int wal_write(sqlite3_file* file, const void* data, int amount, sqlite3_int64 offset) {
  WalFile& w = wal(file);
  const bool header = amount == kFrameHeader;
  const bool appends = offset == w.end || offset == 0;
  if (w.after_commit && appends && (offset == 0 || (header && database_pages(data) == 0)))
    w.after_commit = false;  // the next transaction
  if (offset == 0) w.end = 0;
  w.end = std::max(w.end, offset + amount);
  if (w.after_commit || !appends ||
      (!w.buffer.empty() && offset != w.start + static_cast<sqlite3_int64>(w.buffer.size()))) {
    if (const int rc = flush(w); rc != SQLITE_OK) return rc;
    return w.real->pMethods->xWrite(w.real, data, amount, offset);
  }
  if (w.buffer.empty()) w.start = offset;
  w.buffer.append(static_cast<const char*>(data), static_cast<std::size_t>(amount));
  if (header && database_pages(data) != 0) {
    w.after_commit = true;
    return flush(w);
  }
  return w.buffer.size() >= kMostBuffered ? flush(w) : SQLITE_OK;
}

int wal_close(sqlite3_file* file) {
  WalFile& w = wal(file);
  const int flushed = flush(w);
  const int rc = w.real->pMethods->xClose(w.real);
  w.~WalFile();
  return flushed != SQLITE_OK ? flushed : rc;
}

// Every other use of the file sees what was written: flush first.
int wal_read(sqlite3_file* file, void* data, int amount, sqlite3_int64 offset) {
  if (const int rc = flush(wal(file)); rc != SQLITE_OK) return rc;
  return real(file)->pMethods->xRead(real(file), data, amount, offset);
}
int wal_truncate(sqlite3_file* file, sqlite3_int64 size) {
  WalFile& w = wal(file);
  if (const int rc = flush(w); rc != SQLITE_OK) return rc;
  w.end = std::min(w.end, size);
  return w.real->pMethods->xTruncate(w.real, size);
}
int wal_sync(sqlite3_file* file, int flags) {
  if (const int rc = flush(wal(file)); rc != SQLITE_OK) return rc;
  return real(file)->pMethods->xSync(real(file), flags);
}
int wal_file_size(sqlite3_file* file, sqlite3_int64* size) {
  if (const int rc = flush(wal(file)); rc != SQLITE_OK) return rc;
  return real(file)->pMethods->xFileSize(real(file), size);
}
int wal_file_control(sqlite3_file* file, int op, void* arg) {
  if (const int rc = flush(wal(file)); rc != SQLITE_OK) return rc;
  return real(file)->pMethods->xFileControl(real(file), op, arg);
}
int wal_lock(sqlite3_file* file, int level) {
  return real(file)->pMethods->xLock(real(file), level);
}
int wal_unlock(sqlite3_file* file, int level) {
  return real(file)->pMethods->xUnlock(real(file), level);
}
int wal_check_reserved_lock(sqlite3_file* file, int* out) {
  return real(file)->pMethods->xCheckReservedLock(real(file), out);
}
int wal_sector_size(sqlite3_file* file) {
  return real(file)->pMethods->xSectorSize(real(file));
}
int wal_device_characteristics(sqlite3_file* file) {
  return real(file)->pMethods->xDeviceCharacteristics(real(file));
}

// Version 1: a log file has no shared memory and is never memory-mapped.
const sqlite3_io_methods wal_methods = {1,
                                        wal_close,
                                        wal_read,
                                        wal_write,
                                        wal_truncate,
                                        wal_sync,
                                        wal_file_size,
                                        wal_lock,
                                        wal_unlock,
                                        wal_check_reserved_lock,
                                        wal_file_control,
                                        wal_sector_size,
                                        wal_device_characteristics,
                                        nullptr,
                                        nullptr,
                                        nullptr,
                                        nullptr,
                                        nullptr,
                                        nullptr};

sqlite3_vfs* underlying = nullptr;

int open(sqlite3_vfs*, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  // Other files are the underlying VFS's own, in place.
  if ((flags & SQLITE_OPEN_WAL) == 0) return underlying->xOpen(underlying, name, file, flags, out_flags);
  auto* w = new (file) WalFile{};
  w->base.pMethods = nullptr;  // until the file is open: SQLite then skips xClose
  w->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(file) + kRealOffset);
  const int rc = underlying->xOpen(underlying, name, w->real, flags, out_flags);
  if (rc != SQLITE_OK) {
    if (w->real->pMethods != nullptr) w->real->pMethods->xClose(w->real);
    w->~WalFile();
    return rc;
  }
  w->base.pMethods = &wal_methods;
  return SQLITE_OK;
}

}  // namespace

const char* wal_write_vfs() {
  static std::once_flag registered;
  static sqlite3_vfs vfs;
  std::call_once(registered, [] {
    underlying = sqlite3_vfs_find("unix");
    if (underlying == nullptr) throw std::runtime_error("SQLite has no unix VFS");
    // The underlying VFS's other methods, called with this one: the unix
    // VFS reads nothing from the object it is given but mxPathname, which
    // is the same.
    vfs = *underlying;
    vfs.szOsFile = static_cast<int>(kRealOffset) + underlying->szOsFile;
    vfs.zName = kName;
    vfs.pNext = nullptr;
    vfs.xOpen = open;
    if (sqlite3_vfs_register(&vfs, 0) != SQLITE_OK) throw std::runtime_error("cannot register SQLite VFS");
  });
  return kName;
}

}  // namespace courier::store
