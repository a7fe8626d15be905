// Reading a command's input: a file, or standard input for "-".
#pragma once

#include <optional>
#include <string>

namespace courier::app {

// The whole input, or nullopt with `error` set to a message for the user.
std::optional<std::string> read_input(const std::string& path, std::string& error);

}  // namespace courier::app
