#include "engine/rest/embedded_sender.h"

namespace courier::rest {

namespace {

class EmbeddedSender final : public delivery::Sender {
 public:
  EmbeddedSender(RestApi& api, const std::string& base_url) : api_(api), base_url_(base_url) {}

  void send(delivery::Outbound message, std::function<void(delivery::SendOutcome)> done) override {
    RestRequest request;
    request.method = message.method;
    request.set_target(message.target);
    request.body = std::move(message.body);
    request.body_format = message.format;
    request.answer_format = message.format;
    for (const auto& [name, value] : message.headers) {
      if (name == "If-None-Exist") request.if_none_exist = value;
    }
    request.base_url = base_url_;
    const bool message_exchange = message.message_exchange;
    api_.handle(std::move(request), [done = std::move(done), message_exchange](RestResponse response) {
      delivery::SendOutcome outcome;
      outcome.status = response.status;
      outcome.body = std::move(response.body);
      outcome.format = response.format;
      for (const auto& [name, value] : response.headers)
        if (name == "Location") outcome.location = value;
      delivery::classify_status(outcome, message_exchange);
      done(std::move(outcome));
    });
  }

 private:
  RestApi& api_;
  const std::string& base_url_;
};

}  // namespace

std::shared_ptr<delivery::Sender> make_embedded_sender(RestApi& api, const std::string& base_url) {
  return std::make_shared<EmbeddedSender>(api, base_url);
}

}  // namespace courier::rest
