#include "adapters/mllp/mllp_listener.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <iostream>

#include "adapters/acceptor.h"
#include "adapters/caller.h"
#include "adapters/engine_awaitable.h"
#include "adapters/mllp/framer.h"
#include "adapters/mllp/mllp_sender.h"
#include "adapters/tls/tls.h"
#include "engine/fhir/operation_outcome.h"
#include "engine/hl7v2/ack.h"
#include "engine/hl7v2/from_fhir.h"
#include "engine/hl7v2/maps.h"
#include "engine/hl7v2/to_fhir.h"
#include "engine/rest/rest_api.h"
#include "engine/security/audit.h"
#include "engine/security/security.h"
#include "engine/util/text.h"
#include "engine/util/uuid.h"

namespace courier::adapters {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
// The tag system of resources courier writes about its own work.
constexpr std::string_view kCourierTags = "http://courier.example/fhir/tags";

// When a message in original mode gets its AA: once it is durable, or once
// the route's destinations have taken it (the default).
enum class AckPolicy { on_receipt, after_delivery };

struct MllpSettings {
  std::string address = "0.0.0.0";
  std::uint16_t port = 2575;
  std::size_t max_message = 1u << 20;
  milliseconds idle_timeout{300'000};  // no frame at all for this long: close
  milliseconds read_timeout{30'000};   // a frame begun must end within this
  std::size_t max_connections = 256;
  AckPolicy ack_policy = AckPolicy::after_delivery;
  // Where enhanced mode's application ACKs go (mllp://host:port): the
  // sender's own listener. Empty: none are sent.
  std::string application_acks;
  hl7v2::ConvertOptions convert;
  std::shared_ptr<ReloadableTls> tls;  // null: plain TCP
  bool authenticate = false;           // only peers with a known client certificate
};

// The sender a message claims to be: MSH-3^MSH-4, first components only.
std::string claimed_sender(const hl7v2::AckFacts& facts) {
  const char separator = facts.delimiters.component;
  auto first = [separator](const std::string& field) { return field.substr(0, field.find(separator)); };
  return first(facts.sending_application) + "^" + first(facts.sending_facility);
}

// The ACK's own MSH-10, at most 20 characters (as v2.3 to 2.6 allow). It
// follows from the message and the answer, so that a repeated message gets
// the very ACK the first one got; a message without a control id of its own
// (one that could not be read) cannot be told from another, and its ACK
// gets an id of its own.
std::string ack_control_id(const hl7v2::AckFacts& facts, const hl7v2::Ack& ack) {
  if (facts.control_id.empty()) return util::stable_hash_hex(util::time_ordered_uuid());
  return util::stable_hash_hex(facts.sending_application + "|" + facts.sending_facility + "|" +
                               facts.control_id + "|" + std::to_string(static_cast<int>(ack.code)) +
                               (ack.commit ? "C" : "A"));
}

// The ACK, stamped with the time the answer was decided when known (so a
// repeat gets the same bytes), else now.
std::string ack_text(const hl7v2::AckFacts& facts, const hl7v2::Ack& ack, const std::string& decided_at) {
  const std::string timestamp = decided_at.empty() ? hl7v2::v2_time_now() : hl7v2::v2_time(decided_at);
  return hl7v2::write_ack(facts, ack, ack_control_id(facts, ack), timestamp);
}

// What the engine's answer means for the v2 sender; `decided_at` gets the
// time of the response message it carried (stored, so a repeat gets it too).
hl7v2::Ack ack_for(const Reply& reply, bool commit, std::string& decided_at) {
  hl7v2::Ack ack;
  ack.commit = commit;
  if (reply.status == 202) {
    if (commit) return ack;  // CA: it is durable
    ack.code = hl7v2::AckCode::error;
    ack.text = "accepted; the outcome is not known yet: send the message again to learn it";
    return ack;
  }
  if (reply.status == 204) return ack;
  if (reply.status >= 500) {
    ack.code = hl7v2::AckCode::error;
    ack.text = fhir::outcome_summary(reply.body, reply.format);
    return ack;
  }
  if (reply.status >= 400) {
    ack.code = hl7v2::AckCode::reject;
    ack.text = fhir::outcome_summary(reply.body, reply.format);
    return ack;
  }
  // 200 with a response message: its response.code decides.
  std::optional<hl7v2::Ack> answer = hl7v2::ack_of_response(reply.body, decided_at);
  if (answer) answer->commit = commit;
  return answer.value_or(ack);
}

class MllpListener final : public Listener {
 public:
  MllpListener(std::string name, MllpSettings settings)
      : Listener(std::move(name)), settings_(std::move(settings)) {}

  void start(asio::io_context& io, Engine& engine) override {
    engine_ = &engine;
    security_ = engine.options().security.get();
    maps_ = engine.options().v2_maps;
    if (maps_ == nullptr) {
      throw std::runtime_error("listener " + name() +
                               ": no HL7 v2 maps are loaded (see hl7v2-maps in the config)");
    }
    acceptor_.emplace(io);
    bound_port_ = listen_on(*acceptor_, name(), settings_.address, settings_.port);
    asio::co_spawn(io, accept_loop(), asio::detached);
  }

  void stop() override {
    if (acceptor_) {
      boost::system::error_code ignored;
      acceptor_->close(ignored);
    }
  }

  std::uint16_t port() const override { return bound_port_; }

  std::string describe() const override {
    return std::string(settings_.tls ? "mllp over TLS" : "mllp") + " on " + settings_.address + ":" +
           std::to_string(bound_port_) + (settings_.authenticate ? ", peers authenticated" : "");
  }

  bool authenticates() const override { return settings_.authenticate; }

  void reload_tls() override {
    if (settings_.tls) settings_.tls->reload();
  }

 private:
  asio::awaitable<void> accept_loop() {
    for (;;) {
      // Each connection on its own strand: its session and its watchdog
      // never run at the same time.
      auto [ec, socket] =
          co_await acceptor_->async_accept(asio::make_strand(acceptor_->get_executor()), use_tuple);
      if (ec == asio::error::operation_aborted || !acceptor_->is_open()) co_return;
      if (ec) continue;
      if (connections_.load() >= settings_.max_connections) {
        boost::system::error_code ignored;
        socket.close(ignored);
        std::cerr << "mllp " << name() << ": refused a connection: " << settings_.max_connections
                  << " connections are open\n";
        continue;
      }
      ++connections_;
      asio::co_spawn(socket.get_executor(), session(std::move(socket)),
                     [this](std::exception_ptr) { --connections_; });
    }
  }

  enum class Phase { idle, reading_frame, processing, writing };

  // What a connection is doing, and since when: shared with its watchdog,
  // which may outlive the session by one tick. `Stream` is a TCP socket or
  // a TLS stream over one.
  template <typename Stream>
  struct ConnectionState {
    template <typename... Args>
    explicit ConnectionState(Args&&... args) : stream(std::forward<Args>(args)...) {}
    Stream stream;
    auto& socket() { return stream.lowest_layer(); }
    Phase phase = Phase::idle;
    Clock::time_point since = Clock::now();
    bool done = false;
    void enter(Phase next) {
      phase = next;
      since = Clock::now();
    }
  };

  // Closes the connection when it idles between frames too long, when a
  // frame takes too long to arrive whole (a peer sending a byte a second),
  // or when the peer does not read its ACK in that time.
  template <typename Stream>
  asio::awaitable<void> watchdog(std::shared_ptr<ConnectionState<Stream>> state) {
    asio::steady_timer timer(state->socket().get_executor());
    while (!state->done && state->socket().is_open()) {
      const Clock::duration waited = Clock::now() - state->since;
      const char* why = nullptr;
      if (state->phase == Phase::idle && waited > settings_.idle_timeout) why = "idle too long";
      if (state->phase == Phase::reading_frame && waited > settings_.read_timeout)
        why = "a message did not arrive whole in time";
      if (state->phase == Phase::writing && waited > settings_.read_timeout)
        why = "the peer does not read its ACK";
      if (why != nullptr) {
        std::cerr << "mllp " << name() << ": closed a connection: " << why << "\n";
        boost::system::error_code ignored;
        state->socket().close(ignored);
        co_return;
      }
      timer.expires_after(std::min<milliseconds>(milliseconds(250), settings_.read_timeout));
      co_await timer.async_wait(use_tuple);
    }
  }

  asio::awaitable<void> session(tcp::socket socket) {
    if (!settings_.tls) {
      auto state = std::make_shared<ConnectionState<tcp::socket>>(std::move(socket));
      asio::co_spawn(state->socket().get_executor(), watchdog(state), asio::detached);
      const PeerPtr no_certificate;
      co_await serve(state, no_certificate);
      co_return;
    }
    // The connection keeps the context it began with, whatever SIGHUP loads.
    const std::shared_ptr<asio::ssl::context> context = settings_.tls->context();
    auto state =
        std::make_shared<ConnectionState<asio::ssl::stream<tcp::socket>>>(std::move(socket), *context);
    asio::co_spawn(state->socket().get_executor(), watchdog(state), asio::detached);
    state->enter(Phase::reading_frame);  // the handshake must end within read-timeout
    auto [ec] = co_await state->stream.async_handshake(asio::ssl::stream_base::server, use_tuple);
    engine_->metrics().add("courier_tls_handshakes_total",
                           {{"listener", name()}, {"outcome", ec ? "failed" : "ok"}});
    if (ec) {
      state->done = true;
      boost::system::error_code ignored;
      state->socket().close(ignored);
      co_return;
    }
    state->enter(Phase::idle);
    PeerPtr peer;
    if (settings_.authenticate) {
      if (auto names = peer_certificate_names(state->stream.native_handle()))
        peer = security_->by_certificate(names->names);
    }
    co_await serve(state, peer);
  }

  // Reads frames and answers each, in order; `peer` is who the client
  // certificate names (null when unknown or not asked for).
  template <typename Stream>
  asio::awaitable<void> serve(std::shared_ptr<ConnectionState<Stream>> state, const PeerPtr& peer) {
    boost::system::error_code address_error;
    const Caller caller{peer, state->socket().remote_endpoint(address_error).address().to_string()};
    mllp::Framer framer(settings_.max_message);
    std::array<char, 16384> buffer;
    for (;;) {
      auto [ec, n] = co_await state->stream.async_read_some(asio::buffer(buffer), use_tuple);
      if (ec) break;
      if (state->phase == Phase::idle) state->enter(Phase::reading_frame);
      std::string_view data(buffer.data(), n);
      bool close = false;
      while (!data.empty()) {
        std::size_t used = 0;
        const mllp::Framer::Event event = framer.feed(data, used);
        data.remove_prefix(used);
        log_discarded(framer.take_discarded(), caller);
        if (event == mllp::Framer::Event::oversized) {
          std::cerr << "mllp " << name() << ": closed a connection: a message is larger than "
                    << settings_.max_message << " bytes\n";
          close = true;
          break;
        }
        if (event == mllp::Framer::Event::message) {
          state->enter(Phase::processing);
          const std::string text = framer.take_message();
          const std::string answer = co_await answer_to(text, caller);
          if (answer.empty()) {  // a commit ACK the sender did not ask for
            state->enter(Phase::reading_frame);
            continue;
          }
          state->enter(Phase::writing);
          auto [write_error, written] =
              co_await asio::async_write(state->stream, asio::buffer(answer), use_tuple);
          if (write_error) {
            close = true;
            break;
          }
          state->enter(Phase::reading_frame);
        }
      }
      if (close) break;
      if (!framer.inside_frame()) state->enter(Phase::idle);
    }
    if constexpr (!std::is_same_v<Stream, tcp::socket>) {
      state->enter(Phase::writing);  // a close_notify the peer does not read ends within read-timeout
      auto [ignored] = co_await state->stream.async_shutdown(use_tuple);
    }
    state->done = true;
    boost::system::error_code ignored;
    state->socket().close(ignored);
  }

  // Says what the framer threw away: without a frame there is nothing to
  // answer, so the log is the only place a sender's framing error shows.
  void log_discarded(const mllp::Framer::Discarded& discarded, const Caller& caller) const {
    if (discarded.stray_bytes > 0) {
      std::cerr << "mllp " << name() << ": skipped " << discarded.stray_bytes << " bytes from "
                << caller.address
                << " outside a frame (an MLLP frame starts with 0x0B and ends with 0x1C 0x0D)\n";
    }
    if (discarded.cut_frames > 0) {
      std::cerr << "mllp " << name() << ": dropped " << discarded.cut_frames << " unfinished frame(s) from "
                << caller.address << ": a new frame began (0x0B) before 0x1C 0x0D ended it; not answered\n";
    }
  }

  // The framed ACK (or batch of ACKs) for one frame's content.
  asio::awaitable<std::string> answer_to(const std::string& text, const Caller& caller) {
    if (hl7v2::is_batch(text)) {
      hl7v2::ParseError error;
      std::optional<hl7v2::Batch> batch = hl7v2::parse_batch(text, error);
      if (!batch) co_return mllp::frame(co_await refusal(text, error));
      // The reply keeps the batch's envelope (FHS and BHS, or a BHS when
      // it had none), each header naming the one it answers.
      const std::string now = hl7v2::v2_time_now();
      std::string acks;
      bool file = false;
      bool has_batch_header = false;
      for (const std::string& header : batch->envelope_before) {
        file = file || header.starts_with("FHS");
        has_batch_header = has_batch_header || header.starts_with("BHS");
        acks += hl7v2::batch_reply_header(header, util::stable_hash_hex(header + "|reply"), now) + "\r";
      }
      if (!has_batch_header) acks += "BHS|^~\\&|||||" + now + "\r";
      std::size_t answered = 0;
      for (const hl7v2::Message& message : batch->messages) {
        const std::string ack = co_await answer_message(message, caller);
        answered += ack.empty() ? 0 : 1;
        acks += ack;
      }
      acks += "BTS|" + std::to_string(answered) + "\r";
      if (file) acks += "FTS|1\r";
      co_return mllp::frame(acks);
    }
    hl7v2::ParseError error;
    std::optional<hl7v2::Message> message = hl7v2::Message::parse(text, error);
    if (!message) co_return mllp::frame(co_await refusal(text, error));
    const std::string ack = co_await answer_message(*message, caller);
    co_return ack.empty() ? std::string() : mllp::frame(ack);
  }

  // A message refused without entering courier's custody is kept, as a
  // Binary in courier's FHIR store tagged `tag` (unreadable-hl7v2 when it
  // could not be read, refused-hl7v2 when it was read and refused), for an
  // operator to inspect.
  asio::awaitable<void> keep_refused(const std::string& text, std::string_view tag) {
    rest::RestRequest keep;
    keep.method = "POST";
    keep.segments = {"Binary"};
    keep.body_format = fhir::Format::json;
    keep.body = R"({"resourceType":"Binary","meta":{"tag":[{"system":")" + std::string(kCourierTags) +
                R"(","code":")" + std::string(tag) +
                R"("}]},"contentType":"x-application/hl7-v2+er7","data":")" + util::base64_encode(text) +
                R"("})";
    const rest::RestResponse kept = co_await async_rest(*engine_, std::move(keep), asio::use_awaitable);
    if (kept.status >= 300) std::cerr << "mllp " << name() << ": could not keep the refused message\n";
  }

  asio::awaitable<std::string> refusal(std::string text, const hl7v2::ParseError& error) {
    // The log says what is wrong, never what the message holds.
    std::cerr << "mllp " << name() << ": refused a message: " << error.reason << "\n";
    co_await keep_refused(text, "unreadable-hl7v2");
    const hl7v2::Ack ack{hl7v2::AckCode::reject, false, error.reason, &error};
    co_return ack_text(hl7v2::ack_facts_of_unreadable(text), ack, "");
  }

  // The AR (or CR) for a message courier has no map for, or one that lacks
  // a segment its structure requires.
  asio::awaitable<std::string> unconvertible(const hl7v2::Message& message, const hl7v2::AckFacts& facts,
                                             bool commit, const hl7v2::ConvertError& error) {
    std::cerr << "mllp " << name() << ": refused message " << message.control_id() << ": " << error.reason
              << "\n";
    co_await keep_refused(message.write(), "refused-hl7v2");
    const hl7v2::ParseError where{error.reason, error.sequence, error.segment, error.field, error.code};
    co_return ack_text(facts, hl7v2::Ack{hl7v2::AckCode::reject, commit, error.reason, &where}, "");
  }

  asio::awaitable<std::string> answer_message(const hl7v2::Message& message, const Caller& caller) {
    const hl7v2::AckFacts facts = hl7v2::ack_facts(message);
    const hl7v2::AckRequest wanted = hl7v2::ack_request(message);
    // Enhanced mode: a commit ACK once the message is durable, and its
    // outcome later as an application ACK, sent to `application-acks`. With
    // MSH-15 NE the outcome still follows there when MSH-16 asks for it.
    const bool application_acks = wanted.enhanced && wanted.application != hl7v2::AckCondition::never &&
                                  !settings_.application_acks.empty();
    const bool commit = wanted.enhanced && (wanted.accept != hl7v2::AckCondition::never || application_acks);
    // Who may send at all: a known peer (when the listener asks), with the
    // scope to send messages.
    const char* subtype = nullptr;
    std::string why;
    if (settings_.authenticate && !caller.peer) {
      subtype = "unauthenticated";
      why = "not authorised: connect with the client certificate of a known peer";
    } else if (caller.peer && !caller.peer->scopes.allows("MessageHeader", security::Interaction::create)) {
      subtype = "forbidden";
      why = "not authorised: peer '" + caller.peer->name + "' has no scope to send messages";
    }
    if (subtype != nullptr) {
      security::AuditRecord refused;
      refused.kind = security::AuditRecord::Kind::message;
      refused.subtype = subtype;
      refused.outcome = 4;
      refused.outcome_text = why;
      refused.peer = caller.peer;
      refused.address = caller.address;
      refused.listener = name();
      engine_->audit(std::move(refused));
      engine_->metrics().add("courier_access_refused_total", {{"listener", name()}, {"reason", subtype}});
      std::cerr << "mllp " << name() << ": refused message " << message.control_id() << ": " << why << "\n";
      hl7v2::ParseError where;
      where.reason = why;
      co_return ack_text(facts, hl7v2::Ack{hl7v2::AckCode::reject, commit, why, &where}, "");
    }
    hl7v2::ConvertError convert_error;
    std::vector<hl7v2::ParseError> warnings;
    std::optional<std::string> bundle =
        hl7v2::to_fhir(message, *maps_, settings_.convert, convert_error, &warnings);
    if (!bundle) co_return co_await unconvertible(message, facts, commit, convert_error);
    Inbound inbound;
    inbound.listener = name();
    inbound.peer = caller.peer;
    inbound.peer_address = caller.address;
    inbound.claimed_v2_sender = claimed_sender(facts);
    inbound.search_keys.push_back(facts.control_id);
    inbound.original = message.write();
    inbound.body = std::move(*bundle);
    inbound.format = fhir::Format::json;
    inbound.async = commit || settings_.ack_policy == AckPolicy::on_receipt;
    if (commit && application_acks) {
      // The outcome comes later as enhanced mode's application ACK: the
      // engine relays its response (durably, with retries) to this address,
      // which carries what the ACK must echo. Whether it is sent on success
      // or on error only, MSH-16 says through the converted MessageHeader.
      const std::string_view msh =
          std::string_view(inbound.original).substr(0, inbound.original.find_first_of("\r\n"));
      inbound.response_url = settings_.application_acks + "?acknowledge=" + util::percent_encode(msh);
    }
    const Reply reply = co_await async_accept(*engine_, std::move(inbound), asio::use_awaitable);
    std::string decided_at;
    hl7v2::Ack ack = ack_for(reply, commit, decided_at);
    if (!commit && reply.status == 202 && settings_.ack_policy == AckPolicy::on_receipt) ack = hl7v2::Ack{};
    if (ack.code != hl7v2::AckCode::accept) {
      std::cerr << "mllp " << name() << ": message " << message.control_id()
                << " answered with an error: " << ack.text << "\n";
    }
    // Refused by the engine (invalid once converted, no route): not stored.
    if (reply.status >= 400 && reply.status < 500) co_await keep_refused(message.write(), "refused-hl7v2");
    // What the message was taken without: ERR segments of severity W.
    ack.warnings = std::move(warnings);
    // MSH-15 ER and NE want no CA. An error is answered whatever MSH-15
    // says: silence would look like success.
    const bool unwanted_ca =
        commit && ack.code == hl7v2::AckCode::accept &&
        (wanted.accept == hl7v2::AckCondition::error_only || wanted.accept == hl7v2::AckCondition::never);
    if (unwanted_ca) co_return std::string();
    co_return ack_text(facts, ack, decided_at);
  }

  MllpSettings settings_;
  Engine* engine_ = nullptr;
  std::shared_ptr<const hl7v2::MapSet> maps_;
  std::optional<tcp::acceptor> acceptor_;
  std::uint16_t bound_port_ = 0;
  std::atomic<std::size_t> connections_ = 0;
  const security::Security* security_ = nullptr;
};

}  // namespace

std::unique_ptr<Listener> parse_mllp_listener(std::string name, const YAML::Node& node,
                                              config::YamlReader& reader) {
  const std::string where = "listener '" + name + "'";
  if (!reader.check_keys(node,
                         {"name", "type", "address", "port", "max-message", "idle-timeout", "read-timeout",
                          "max-connections", "ack", "application-acks", "timezone", "tls", "authentication"},
                         where)) {
    return nullptr;
  }
  MllpSettings s;
  if (node["address"]) s.address = reader.scalar(node["address"], where + ".address").value_or(s.address);
  if (node["port"]) {
    s.port =
        static_cast<std::uint16_t>(reader.integer(node["port"], where + ".port", 0, 65535).value_or(s.port));
  }
  if (node["max-message"]) {
    s.max_message =
        static_cast<std::size_t>(reader.size(node["max-message"], where + ".max-message").value_or(1));
  }
  if (node["idle-timeout"]) {
    s.idle_timeout = reader.duration(node["idle-timeout"], where + ".idle-timeout").value_or(s.idle_timeout);
  }
  if (node["read-timeout"]) {
    s.read_timeout = reader.duration(node["read-timeout"], where + ".read-timeout").value_or(s.read_timeout);
  }
  if (node["max-connections"]) {
    s.max_connections = static_cast<std::size_t>(
        reader.integer(node["max-connections"], where + ".max-connections", 1, 1'000'000).value_or(1));
  }
  if (node["ack"]) {
    const std::string ack = reader.scalar(node["ack"], where + ".ack").value_or("after-delivery");
    if (ack == "on-receipt") {
      s.ack_policy = AckPolicy::on_receipt;
    } else if (ack != "after-delivery") {
      reader.fail(node["ack"], where + ".ack must be after-delivery or on-receipt, not '" + ack + "'");
    }
  }
  if (node["application-acks"]) {
    s.application_acks = reader.scalar(node["application-acks"], where + ".application-acks").value_or("");
    s.convert.response_request = true;
    if (!is_mllp_url(s.application_acks))
      reader.fail(node["application-acks"], where +
                                                ".application-acks must be mllp://host:port or "
                                                "mllps://host:port, not '" +
                                                s.application_acks + "'");
  }
  if (node["timezone"])
    s.convert.default_offset = reader.scalar(node["timezone"], where + ".timezone").value_or("");
  if (node["tls"]) s.tls = parse_tls(node["tls"], reader, where + ".tls", true);
  s.authenticate = read_authentication(node, reader, where);
  if (s.authenticate && (!s.tls || s.tls->settings().client_certificates == ClientCertificates::none))
    reader.fail(node["authentication"], where +
                                            ": MLLP peers prove who they are with client certificates: "
                                            "set tls.client-certificates to required");
  return std::make_unique<MllpListener>(std::move(name), std::move(s));
}

}  // namespace courier::adapters
