// The syntax tree of a compiled FHIRPath expression.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/fhirpath/value.h"

namespace courier::fhirpath {

// Binary operators, resolved when parsing so evaluation need not compare names.
enum class BinaryOp : std::uint8_t {
  none,
  implies,
  or_,
  xor_,
  and_,
  in,
  contains,
  equal,
  equivalent,
  not_equal,
  not_equivalent,
  less,
  greater,
  less_equal,
  greater_equal,
  union_,
  plus,
  minus,
  concat,
  times,
  divide,
  div,
  mod
};

struct Node {
  enum class Kind {
    empty,      // {}
    literal,    // true, 'text', 1, 1.5, @2020, 4 'mg'
    member,     // name, on `input` or on the focus
    function,   // name(args...), on `input` or on the focus
    this_item,  // $this
    index,      // $index
    total,      // $total
    variable,   // %name
    indexer,    // input[args[0]]
    unary,      // name is "-" or "+"; args[0]
    binary,     // name is the operator; args[0], args[1]
    type_test,  // args[0] is / as type_name
    // A literal that reads well but stands for no value (a time with a
    // time zone): evaluating it is an execution error saying `name`.
    no_value,
  };

  Kind kind = Kind::empty;
  std::string name;
  std::size_t position = 0;
  std::unique_ptr<Node> input;
  std::vector<Node> args;
  Item literal;
  std::string type_name;         // for is/as: "Patient", "System.String", "FHIR.code"
  BinaryOp op = BinaryOp::none;  // for binary nodes
  // For function nodes, the implementation, looked up once when compiling
  // (a generic function pointer, cast back by the evaluator).
  void (*function)() = nullptr;
};

BinaryOp binary_op(std::string_view name);

// Parses an expression; throws Error (syntax).
Node parse(std::string_view text);

// A type specifier written as an expression argument (ofType(FHIR.Patient)):
// the dotted name, or "" when the node is not one.
std::string type_specifier(const Node& node);

}  // namespace courier::fhirpath
