// Who is on the other end of a connection, once authenticated, and what
// it may do: SMART system scopes for the FHIR REST facade and messaging,
// groups that route `allow:` lists name, the source endpoints and v2
// senders it may claim, and whether it is an operator.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace courier::security {

enum class Interaction { create, read, update, remove, search };

// SMART on FHIR system scopes: v2 (`system/Patient.cruds`, `system/*.rs`)
// and v1 (`system/Patient.read`, `.write`, `.*`). Other scopes (patient/,
// user/, openid, ones with query restrictions we cannot enforce) grant
// nothing.
class Scopes {
 public:
  Scopes() = default;
  // Space-separated, as in a token's `scope` claim.
  static Scopes parse(std::string_view text);
  // Adds one scope; false when it grants nothing courier understands.
  bool add(std::string_view scope);
  bool allows(std::string_view resource_type, Interaction interaction) const;
  bool empty() const { return grants_.empty(); }

 private:
  struct Grant {
    std::string type;  // a resource type, or "*"
    unsigned interactions = 0;
  };
  std::vector<Grant> grants_;
};

struct Peer {
  std::string name;              // the configured peer, or the token's subject
  std::string authenticated_by;  // "certificate", "token", "api-key"
  std::vector<std::string> groups;
  bool is_operator = false;
  std::vector<std::string> endpoints;   // MessageHeader.source.endpoint values it may claim
  std::vector<std::string> v2_senders;  // "MSH-3^MSH-4" values it may claim
  Scopes scopes;

  // True when `who` names this peer or, as "group:NAME", one of its groups.
  bool matches(std::string_view who) const;
};

}  // namespace courier::security
