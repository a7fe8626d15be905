#include "engine/security/peer.h"

#include <algorithm>

namespace courier::security {

namespace {

constexpr unsigned bit(Interaction i) {
  return 1u << static_cast<unsigned>(i);
}
constexpr unsigned kAll = bit(Interaction::create) | bit(Interaction::read) | bit(Interaction::update) |
                          bit(Interaction::remove) | bit(Interaction::search);

// "cruds" (v2, letters in that order, each at most once), or v1's read,
// write and *; 0 when it is neither.
unsigned interactions_of(std::string_view permission) {
  if (permission == "read") return bit(Interaction::read) | bit(Interaction::search);
  if (permission == "write")
    return bit(Interaction::create) | bit(Interaction::update) | bit(Interaction::remove);
  if (permission == "*") return kAll;
  constexpr std::string_view order = "cruds";
  constexpr Interaction meaning[] = {Interaction::create, Interaction::read, Interaction::update,
                                     Interaction::remove, Interaction::search};
  unsigned result = 0;
  std::size_t next = 0;
  for (const char letter : permission) {
    const std::size_t at = order.find(letter, next);
    if (at == std::string_view::npos) return 0;
    result |= bit(meaning[at]);
    next = at + 1;
  }
  return result;
}

}  // namespace

Scopes Scopes::parse(std::string_view text) {
  Scopes scopes;
  while (!text.empty()) {
    const std::size_t space = text.find(' ');
    const std::string_view scope = text.substr(0, space);
    if (!scope.empty()) scopes.add(scope);
    if (space == std::string_view::npos) break;
    text.remove_prefix(space + 1);
  }
  return scopes;
}

bool Scopes::add(std::string_view scope) {
  constexpr std::string_view prefix = "system/";
  if (!scope.starts_with(prefix) || scope.find('?') != std::string_view::npos) return false;
  scope.remove_prefix(prefix.size());
  const std::size_t dot = scope.find('.');
  if (dot == std::string_view::npos || dot == 0) return false;
  const unsigned interactions = interactions_of(scope.substr(dot + 1));
  if (interactions == 0) return false;
  grants_.push_back(Grant{std::string(scope.substr(0, dot)), interactions});
  return true;
}

bool Scopes::allows(std::string_view resource_type, Interaction interaction) const {
  return std::any_of(grants_.begin(), grants_.end(), [&](const Grant& g) {
    return (g.type == "*" || g.type == resource_type) && (g.interactions & bit(interaction)) != 0;
  });
}

bool Peer::matches(std::string_view who) const {
  constexpr std::string_view group = "group:";
  if (who.starts_with(group)) {
    who.remove_prefix(group.size());
    return std::find(groups.begin(), groups.end(), who) != groups.end();
  }
  return who == name;
}

}  // namespace courier::security
