// The `merge` interaction of rest destinations: each resource of a
// message is merged into the server's copy instead of replacing it, so a
// message that carries only part of a record (an HL7 v2 result whose PID
// has the name but not the address, an A40 that only retires a patient)
// never wipes what an earlier one stored. Only plain FHIR REST is used, so
// it works on courier's own store and on any FHIR server: a batch of reads
// first, then one transaction of updates, each with If-Match on the
// version it read; a change in between fails that transaction (412, or 409
// for a resource created since) and the merge starts again from the reads.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/delivery/sender.h"
#include "engine/fhir/element.h"

namespace courier::rest {

// The server's `stored` copy with each element that `incoming` carries in
// place of its own; elements `incoming` leaves out stay as stored (HL7 v2's
// rule: a field not sent is no change), unless it names them in v2-null
// extensions (a field sent as ""), which clear them. Identifiers
// accumulate: the stored ones `incoming` does not repeat are kept after its
// own. The id and meta stay the server's, except meta.source, which says
// who wrote this version.
fhir::Element merged_resource(const fhir::Element& stored, const fhir::Element& incoming);

// Removes the resource's v2-null extensions (hl7v2::v2_null_extension) and
// returns the elements they name.
std::vector<std::string> take_v2_nulls(fhir::Element& resource);

// Sends through `inner` a transaction Bundle (an Outbound's body) whose
// updates are merges: each update's current version is read (one batch),
// merged with merged_resource and written back by id with If-Match. An
// update whose target does not exist yet, or whose condition matches more
// than one, goes as written (a create; the server's 412).
std::shared_ptr<delivery::Sender> make_merging_sender(std::shared_ptr<delivery::Sender> inner);

}  // namespace courier::rest
