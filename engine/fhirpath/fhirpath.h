// FHIRPath (2.0, as used by FHIR R4): compile an expression once, evaluate
// it many times against FHIR resources.
#pragma once

#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

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

struct CompileOptions {
  // Strict mode reports paths that cannot exist in the model (name.given1,
  // Observation.valueQuantity) as semantic errors instead of giving empty.
  bool strict = false;
  // The type of the context the expression runs on ("Patient"), when known.
  std::string context_type;
};

class Expression {
 public:
  // Throws Error (syntax or semantic).
  static Expression compile(std::string_view text, const CompileOptions& options = {});

  // Evaluates against `resource` (also %resource and %context); throws Error
  // (execution). `variables` are extra %names.
  Collection evaluate(const fhir::Element& resource,
                      const std::map<std::string, Collection>& variables = {}) const;
  // Evaluates on a collection that is not a resource (literal expressions).
  Collection evaluate(const Collection& context, const fhir::Element* resource,
                      const std::map<std::string, Collection>& variables = {}) const;

  const std::string& text() const { return text_; }

 private:
  std::string text_;
  std::shared_ptr<const Node> root_;
};

// The value written as the test suite writes outputs: "@1974-12-25" for a
// date, "4 'g'" for a Quantity, the FHIR JSON for complex elements.
std::string output_text(const Item& item);

}  // namespace courier::fhirpath
