// libFuzzer target: what courier does with untrusted bytes before anything
// is stored. The input is taken as a message body (admission: parse,
// validate, message facts, route matching with a FHIRPath condition and an
// order-by key, and courier's own response to it) and as the HTTP values a
// peer controls (URLs, query strings, Content-Type, Accept). Any input must
// give an answer, never a crash, a hang or a sanitizer report.
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string_view>

#include "adapters/http/http_support.h"
#include "engine/admission.h"
#include "engine/message/response_builder.h"

namespace {

courier::route::RouteSet make_routes() {
  using namespace courier;
  route::Route r;
  r.name = "orders";
  r.when.event = "http://example.org/fhir/message-events|order-request";
  r.when.expression = fhirpath::Expression::compile(
      "Bundle.entry[0].resource.ofType(MessageHeader).focus.resolve().is(ServiceRequest)",
      {.strict = true, .context_type = "Bundle"});
  route::Destination d;
  d.name = "lis";
  d.order_by = fhirpath::Expression::compile("Bundle.entry.resource.ofType(ServiceRequest).subject.reference",
                                             {.strict = true, .context_type = "Bundle"});
  r.to.push_back(std::move(d));
  route::RouteSet set;
  set.routes.push_back(std::move(r));
  return set;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace courier;
  static const route::RouteSet routes = make_routes();
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  Inbound in;
  in.listener = "fhir";
  in.body = std::string(text);
  const Admission a = admit(in, routes, {});
  if (a.rejection) {
    if (a.rejection->status != 400 && a.rejection->status != 422) throw std::logic_error("unexpected status");
    if (a.rejection->body.empty()) throw std::logic_error("a refusal without an OperationOutcome");
  } else if (!a.info.response) {
    if (a.route == nullptr || a.order_keys.size() != a.route->to.size())
      throw std::logic_error("admitted, no route");
    const fhir::Element response = message::build_response(a.info, {"ok", {}, "http://courier.invalid/fhir"});
    fhir::write_json(response);
  }

  adapters::parse_url(text);
  adapters::parse_query(text);
  adapters::format_of(text, text);
  adapters::accepted_format(text);
  return 0;
}
