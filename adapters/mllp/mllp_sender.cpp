#include "adapters/mllp/mllp_sender.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include <optional>
#include <vector>

#include "adapters/mllp/framer.h"
#include "adapters/sender_support.h"
#include "adapters/tls/tls.h"
#include "engine/fhir/codec.h"
#include "engine/hl7v2/ack.h"
#include "engine/hl7v2/from_fhir.h"
#include "engine/hl7v2/maps.h"
#include "engine/hl7v2/message.h"
#include "engine/util/text.h"

namespace courier::adapters {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

namespace {

struct HostPort {
  bool tls = false;
  std::string host;
  std::string port;
  std::string key() const { return host + ":" + port; }
};

// mllp://host:port, or mllps://host:port for MLLP over TLS.
std::optional<HostPort> parse_mllp_url(std::string_view url) {
  const bool tls = url.starts_with("mllps://");
  if (!tls && !url.starts_with("mllp://")) return std::nullopt;
  url.remove_prefix(tls ? 8 : 7);
  while (url.ends_with('/')) url.remove_suffix(1);
  const std::size_t colon = url.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == url.size()) return std::nullopt;
  return HostPort{tls, std::string(url.substr(0, colon)), std::string(url.substr(colon + 1))};
}

class MllpSender final : public delivery::Sender, public std::enable_shared_from_this<MllpSender> {
 public:
  MllpSender(asio::io_context& io, std::shared_ptr<const hl7v2::MapSet> maps,
             std::shared_ptr<ReloadableTls> tls)
      : io_(io), maps_(std::move(maps)), tls_(std::move(tls)) {}

  void send(delivery::Outbound message, std::function<void(delivery::SendOutcome)> done) override {
    run_exchange(io_.get_executor(), exchange(shared_from_this(), std::move(message)), std::move(done));
  }

 private:
  static asio::awaitable<delivery::SendOutcome> exchange(std::shared_ptr<MllpSender> self,
                                                         delivery::Outbound message) {
    using Kind = delivery::SendOutcome::Kind;
    delivery::SendOutcome outcome;
    outcome.kind = Kind::fatal;
    // An application ACK's address carries the MSH of the message it
    // answers: mllp://host:port?acknowledge=MSH…
    const std::size_t question = message.target.find('?');
    const std::string_view address = std::string_view(message.target).substr(0, question);
    std::string acknowledged;
    if (question != std::string::npos)
      for (auto& [key, value] : util::parse_form(std::string_view(message.target).substr(question + 1)))
        if (key == "acknowledge") acknowledged = std::move(value);
    const std::optional<HostPort> peer = parse_mllp_url(address);
    if (!peer) {
      outcome.error = "not an mllp://host:port or mllps://host:port address: " + std::string(address);
      co_return outcome;
    }
    std::string json = std::move(message.body);
    if (message.format == fhir::Format::xml) {
      const fhir::ParseResult parsed = fhir::parse_xml(json);
      if (!parsed.resource) {
        outcome.error = "the stored message does not read as FHIR XML";
        co_return outcome;
      }
      json = fhir::write_json(*parsed.resource);
    }
    std::string why;
    const std::optional<hl7v2::Outgoing> v2 = acknowledged.empty()
                                                  ? hl7v2::oru_from_fhir(json, self->maps_.get(), why)
                                                  : hl7v2::application_ack(acknowledged, json, why);
    if (!v2) {
      outcome.error = "no HL7 v2 form: " + why;
      co_return outcome;
    }
    const std::string frame = mllp::frame(v2->text);
    if (peer->tls)
      co_return co_await self->exchange_over(self->tls_pool_, *peer, frame, v2->control_id, message);
    co_return co_await self->exchange_over(self->plain_pool_, *peer, frame, v2->control_id, message);
  }

  // Sends the frame and reads the receiver's ACK, over a kept connection
  // when there is one.
  template <typename Stream>
  asio::awaitable<delivery::SendOutcome> exchange_over(ConnectionPool<Stream>& pool,
                                                       const HostPort& peer_address, const std::string& frame,
                                                       const std::string& control_id,
                                                       const delivery::Outbound& message) {
    using Kind = delivery::SendOutcome::Kind;
    const HostPort* peer = &peer_address;
    delivery::SendOutcome outcome;
    outcome.kind = Kind::transient;
    // A kept connection may have been closed by the receiver meanwhile: one
    // more try on a fresh connection then.
    for (int round = 0; round < 2; ++round) {
      std::optional<Stream> stream = pool.take(peer->key());
      const bool reused = stream.has_value();
      if (!stream) {
        open_stream(stream, co_await asio::this_coro::executor, *tls_);
        beast::get_lowest_layer(*stream).expires_after(message.timeout);
        outcome.error = co_await connect_stream(*stream, peer->host, peer->port);
        if (!outcome.error.empty()) co_return outcome;
      }
      beast::get_lowest_layer(*stream).expires_after(message.timeout);
      auto [wec, written] = co_await asio::async_write(*stream, asio::buffer(frame), use_tuple);
      // Read until the ACK of this message. Other frames are stepped over:
      // a receiver in enhanced mode may send the application ACK of an
      // earlier message on this kept connection after its CA; anything that
      // is not an ACK of this message is no answer to it.
      std::optional<hl7v2::ReceivedAck> received;
      boost::system::error_code rec = wec;
      mllp::Framer framer(1u << 20);
      std::array<char, 4096> buffer;
      while (!rec && !received) {
        std::size_t n = 0;
        std::tie(rec, n) = co_await stream->async_read_some(asio::buffer(buffer), use_tuple);
        std::string_view data(buffer.data(), n);
        while (!rec && !data.empty() && !received) {
          std::size_t used = 0;
          const mllp::Framer::Event event = framer.feed(data, used);
          data.remove_prefix(used);
          if (event == mllp::Framer::Event::oversized) rec = asio::error::message_size;
          if (event != mllp::Framer::Event::message) continue;
          hl7v2::ParseError parse_error;
          const std::optional<hl7v2::Message> frame =
              hl7v2::Message::parse(framer.take_message(), parse_error);
          const hl7v2::ReceivedAck ack = frame ? hl7v2::read_ack(*frame) : hl7v2::ReceivedAck{};
          if (!ack.code.empty() && ack.acknowledged_id == control_id) received = ack;
        }
      }
      if (!received) {
        if (reused && round == 0 && rec != beast::error::timeout) continue;
        outcome.error = rec == beast::error::timeout
                            ? "no ACK within " + std::to_string(message.timeout.count()) + " ms"
                            : "connection to " + peer->key() + " failed: " + rec.message();
        co_return outcome;
      }
      pool.give_back(peer->key(), std::move(*stream));
      if (received->code == "AA" || received->code == "CA") {
        outcome.kind = Kind::done;
        outcome.error.clear();
      } else if (received->code == "AR" || received->code == "CR") {
        outcome.kind = Kind::fatal;
        outcome.error = received->code + ": " + received->text;
      } else {
        outcome.error = received->code + ": " + received->text;
      }
      co_return outcome;
    }
    co_return outcome;
  }

  asio::io_context& io_;
  std::shared_ptr<const hl7v2::MapSet> maps_;
  std::shared_ptr<ReloadableTls> tls_;
  ConnectionPool<beast::tcp_stream> plain_pool_{16};
  ConnectionPool<TlsStream> tls_pool_{16};
};

}  // namespace

bool is_mllp_url(std::string_view url) {
  return parse_mllp_url(url).has_value();
}

std::shared_ptr<delivery::Sender> make_mllp_sender(asio::io_context& io,
                                                   std::shared_ptr<const hl7v2::MapSet> maps,
                                                   std::shared_ptr<ReloadableTls> tls) {
  return std::make_shared<MllpSender>(io, std::move(maps), std::move(tls));
}

}  // namespace courier::adapters
