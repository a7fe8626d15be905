// The FHIRPath location of an element, built up while walking a tree and
// written out only when an issue needs it.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/fhir/element.h"

namespace courier::fhir {

class PathBuilder {
 public:
  explicit PathBuilder(std::string_view root) { steps_.push_back({root, -1, {}}); }

  // `index` is the position among repeats (-1 for a single element); `choice`
  // the chosen type name for a choice element.
  void push(std::string_view name, std::int32_t index = -1, std::string_view choice = {}) {
    steps_.push_back({name, index, choice});
  }
  void pop() { steps_.pop_back(); }
  // Adds the step for a child element of the tree.
  void push(const Element& e, std::int32_t index) {
    push(e.name(), e.info() != nullptr && e.info()->repeats() ? index : -1,
         e.info() != nullptr && e.info()->choice ? std::string_view(e.type().name) : std::string_view());
  }

  std::string str() const {
    std::string out;
    for (const Step& s : steps_) {
      if (!out.empty()) out += '.';
      out += s.name;
      if (s.index >= 0) out += '[' + std::to_string(s.index) + ']';
      if (!s.choice.empty()) {
        out += ".ofType(";
        out += s.choice;
        out += ')';
      }
    }
    return out;
  }

 private:
  struct Step {
    std::string_view name;
    std::int32_t index;
    std::string_view choice;
  };
  std::vector<Step> steps_;
};

}  // namespace courier::fhir
