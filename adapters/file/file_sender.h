// The `file` destination: each message becomes one file in a folder,
// written atomically (a temporary name, then rename) and durably.
#pragma once

#include <memory>

#include "engine/delivery/sender.h"

namespace courier::adapters {

// Writes on a thread of its own. Writes that queue up together share one
// sync of the file system (group commit), then are renamed into place, so a
// reader of the folder never sees a partial file.
std::shared_ptr<delivery::Sender> make_file_sender();

}  // namespace courier::adapters
