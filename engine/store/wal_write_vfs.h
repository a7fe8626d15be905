// A SQLite VFS that writes each commit's log frames in one system call.
//
// SQLite writes a commit to the write-ahead log frame by frame, two writes
// per page (the frame's 24-byte header, then the page): some 150 system
// calls for a commit of 15 REST creates, which in a virtual machine cost
// more than the copying they do. This VFS wraps the unix one and, for log
// files only, gathers a transaction's frames in memory and writes them at
// once when the commit's last frame begins; the rest of the commit goes to
// the file directly, so that all of it is there before SQLite publishes the
// commit to readers. Any other use of the file (read, sync, size,
// truncate, close) writes what was gathered first.
#pragma once

namespace courier::store {

// Registers the VFS (once) and returns its name, for sqlite3_open_v2.
const char* wal_write_vfs();

}  // namespace courier::store
