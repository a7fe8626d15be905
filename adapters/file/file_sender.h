// The `file` destination: each message becomes one file in a folder,
// written atomically (a file without a name, then linked into place) and
// durably.
#pragma once

#include <memory>

#include "engine/delivery/sender.h"

namespace courier::adapters {

// Writes on a thread of its own. Writes that queue up together share one
// sync of the file system (group commit), then get their names, so a reader
// of the folder never sees a partial file.
std::shared_ptr<delivery::Sender> make_file_sender();

}  // namespace courier::adapters
