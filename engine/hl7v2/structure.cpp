#include "engine/hl7v2/structure.h"

#include <algorithm>

namespace courier::hl7v2 {
namespace {

class Matcher {
 public:
  explicit Matcher(const std::vector<Segment>& segments) : segments_(segments) {}

  // Matches the items from the current position on; false (with error())
  // when a required one is missing.
  bool match(const std::vector<StructureItem>& items) {
    for (const StructureItem& item : items) {
      int count = 0;
      while (item.max < 0 || count < item.max) {
        if (position_ < segments_.size() && starts(item, position_)) {
          if (item.group.empty()) {
            ++position_;  // a segment, or the one a choice found
          } else if (!match(item.items)) {
            return false;
          }
          ++count;
          continue;
        }
        if (count >= item.min) break;
        // Required and not next: step over what stands before it (a segment
        // out of its place), or say it is missing.
        const std::optional<std::size_t> later = find_from(item, position_ + 1);
        if (!later) {
          const std::string first = first_segment(item);
          const std::string what =
              item.group.empty() ? "the required segment " + item.segment
                                 : "the required group " + item.group + " (beginning with " + first + ")";
          error_ = ParseError{what + " is missing", position_ + 1, first, 0, 100};
          return false;
        }
        position_ = *later;
      }
    }
    return true;
  }

  const ParseError& error() const { return error_; }

 private:
  // Whether the item can begin at segment `at`: its name, or for a group
  // one of the segments it may begin with.
  bool starts(const StructureItem& item, std::size_t at) const {
    if (!item.choice.empty()) {
      return std::find(item.choice.begin(), item.choice.end(), segments_[at].name()) != item.choice.end();
    }
    if (item.group.empty()) return segments_[at].name() == item.segment;
    for (const StructureItem& part : item.items) {
      if (starts(part, at)) return true;
      if (part.min > 0) return false;  // a required part must come first
    }
    return false;
  }

  std::optional<std::size_t> find_from(const StructureItem& item, std::size_t at) const {
    for (; at < segments_.size(); ++at) {
      if (starts(item, at)) return at;
    }
    return std::nullopt;
  }

  static std::string first_segment(const StructureItem& item) {
    if (!item.choice.empty()) return item.choice.front();
    if (item.group.empty()) return item.segment;
    for (const StructureItem& part : item.items) {
      if (part.min > 0) return first_segment(part);
    }
    return item.items.empty() ? std::string() : first_segment(item.items.front());
  }

  const std::vector<Segment>& segments_;
  std::size_t position_ = 0;
  ParseError error_;
};

}  // namespace

std::optional<ParseError> check_structure(const Message& message, const Structure& structure) {
  Matcher matcher(message.segments());
  if (matcher.match(structure.items)) return std::nullopt;
  return matcher.error();
}

}  // namespace courier::hl7v2
