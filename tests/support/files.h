// Paths and file reading for tests.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace courier::testing {

// The repository's root, compiled in by CMake.
inline std::filesystem::path source_dir() {
  return COURIER_SOURCE_DIR;
}
// Conformance material written by others, beside the repository.
inline std::filesystem::path conformance_dir() {
  return source_dir().parent_path() / "shared" / "conformance";
}

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace courier::testing
