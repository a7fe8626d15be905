// Runs the JSON → XML → JSON round trip over every *.json file in a folder
// (the FHIR R4 examples) and reports how many keep their meaning.
// Usage: fhir_roundtrip FOLDER [EXCLUSIONS_FILE]
// Exits 1 when a file that is not listed in the exclusions fails.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>
#include <vector>

#include "tests/support/roundtrip.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: fhir_roundtrip FOLDER [EXCLUSIONS_FILE]\n";
    return 2;
  }
  std::set<std::string> excluded;
  if (argc > 2) {
    std::ifstream list(argv[2]);
    for (std::string line; std::getline(list, line);)
      if (!line.empty() && line[0] != '#') excluded.insert(line.substr(0, line.find(' ')));
  }
  std::vector<std::filesystem::path> files;
  for (const auto& entry : std::filesystem::directory_iterator(argv[1]))
    if (entry.path().extension() == ".json" && entry.path().filename() != "package.json")
      files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  std::size_t passed = 0, failed = 0, skipped = 0;
  for (const auto& path : files) {
    const std::string name = path.filename().string();
    if (excluded.count(name) != 0) {
      ++skipped;
      continue;
    }
    std::ifstream in(path, std::ios::binary);
    std::stringstream buffer;
    buffer << in.rdbuf();
    std::string difference;
    try {
      difference = courier::testing::roundtrip_difference(buffer.str());
    } catch (const std::exception& e) {
      difference = std::string("exception: ") + e.what();
    }
    if (difference.empty()) {
      ++passed;
    } else {
      ++failed;
      std::cout << "FAIL " << name << ": " << difference << '\n';
    }
  }
  std::cout << "round trip JSON -> XML -> JSON: " << passed << " passed, " << failed << " failed, " << skipped
            << " excluded, of " << files.size() << " examples\n";
  return failed == 0 ? 0 : 1;
}
