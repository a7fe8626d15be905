// FHIRPath (2.0, as used by FHIR R4): compile an expression once, evaluate
// it many times against FHIR resources.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/fhir/element.h"
#include "engine/fhirpath/value.h"

namespace courier::fhirpath {

// The three kinds of failure the official test suite tells apart.
class Error : public std::runtime_error {
 public:
  enum class Kind { syntax, semantic, execution };
  Error(Kind kind, std::size_t position, const std::string& message)
      : std::runtime_error(message), kind_(kind), position_(position) {}
  Kind kind() const { return kind_; }
  std::size_t position() const { return position_; }  // 0-based offset in the expression

 private:
  Kind kind_;
  std::size_t position_;
};

std::string_view to_string(Error::Kind kind);

struct Node;
class Terminology;

// What an evaluation may use besides the resource.
struct Environment {
  std::map<std::string, Collection> variables;  // extra %names
  // Value sets and code systems for memberOf(), after those inside the resource.
  const Terminology* terminology = nullptr;
  // Where trace(name[, projection]) writes; nowhere when unset, because a
  // trace can hold patient data.
  std::function<void(std::string_view name, const Collection& items)> trace;
};

struct CompileOptions {
  // Strict mode reports paths that cannot exist in the model (name.given1,
  // Observation.valueQuantity) as semantic errors instead of giving empty.
  bool strict = false;
  // The type of the context the expression runs on ("Patient"), when known.
  std::string context_type;
  // Report order-dependent functions (first(), skip(), [0], ...) on
  // collections that have no defined order (children(), descendants()) as
  // semantic errors: their answer would depend on the implementation.
  bool check_ordered_functions = false;
};

class Expression {
 public:
  // Throws Error (syntax or semantic).
  static Expression compile(std::string_view text, const CompileOptions& options = {});

  // Evaluates against `resource` (also %resource and %context); throws Error
  // (execution).
  Collection evaluate(const fhir::Element& resource, const Environment& environment = {}) const;
  // Evaluates on a collection that is not a resource (literal expressions).
  Collection evaluate(const Collection& context, const fhir::Element* resource,
                      const Environment& environment = {}) const;

  const std::string& text() const { return text_; }
  // The string literals given to calls of `function` (the value set URLs of
  // memberOf()), each with its position, so a caller can check them early.
  std::vector<std::pair<std::string, std::size_t>> string_arguments(std::string_view function) const;

 private:
  std::string text_;
  std::shared_ptr<const Node> root_;
};

// The value written as the test suite writes outputs: "@1974-12-25" for a
// date, "4 'g'" for a Quantity, the FHIR JSON for complex elements.
std::string output_text(const Item& item);

}  // namespace courier::fhirpath
