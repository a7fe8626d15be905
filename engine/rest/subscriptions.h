// R4 Subscriptions on courier's FHIR store: criteria-based, `rest-hook`
// channel. A filler subscribes to, say,
// ServiceRequest?_tag=…|actionable&performer=Organization/lab, and each
// create or update that matches is sent to its endpoint:
// - payload application/fhir+json (or +xml): the resource, as an update
//   (PUT) to [endpoint]/[type]/[id], as R4's rest-hook defines;
// - no payload: an empty POST to [endpoint], a hint to go and search.
// Notifications to one subscription go one at a time, in order, retried
// with backoff; a subscription whose endpoint keeps failing is set to
// status `error` (with `error` saying why) and gets no more. Notifications
// are hints, not the data: they live in memory, and a filler that missed
// some (a restart, an `error`) catches up by searching with _lastUpdated.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include <boost/asio/any_io_executor.hpp>

#include "engine/delivery/sender.h"
#include "engine/fhir/element.h"
#include "engine/rest/resource_store.h"
#include "engine/route/route.h"

namespace courier::rest {

// Why courier cannot serve this Subscription (criteria it cannot search, a
// channel other than rest-hook, an endpoint that is not http(s)); nullopt
// when it can.
std::optional<std::string> subscription_problem(const fhir::Element& subscription);

class SubscriptionHub {
 public:
  // Runs on `executor` (a strand); every call must come from it.
  SubscriptionHub(boost::asio::any_io_executor executor, ResourceStore& store,
                  std::shared_ptr<delivery::Sender> http, route::RetryPolicy retry);
  ~SubscriptionHub();

  // Loads the active subscriptions from the store.
  void start();
  // Cancels retry timers.
  void stop();
  // A resource was created, updated (`resource` parsed) or deleted (null).
  void on_written(const ResourceVersion& written, const fhir::Element* resource);
  // Whether any subscription is about resources of `type`: a resource
  // courier makes up when read (a conversation's Task) is built only then.
  bool watches(std::string_view type) const;

 private:
  class Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace courier::rest
