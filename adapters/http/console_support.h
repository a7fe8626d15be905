// The operator console's server side that needs no Beast: login sessions
// (an HttpOnly cookie and a CSRF token per session), cookies, and the
// console's static files.
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "adapters/caller.h"
#include "adapters/http/http_support.h"

namespace courier::adapters {

// Sessions live in memory: a restart logs everyone out, which is what an
// operator expects of a server restart. A session ends after `idle` without
// use, or at logout.
class ConsoleSessions {
 public:
  struct Session {
    PeerPtr peer;
    std::string csrf;  // sent back on every state-changing request (X-CSRF-Token)
    std::chrono::steady_clock::time_point last_used;
  };
  struct Opened {
    std::string token;  // the cookie's value
    std::string csrf;
  };

  explicit ConsoleSessions(std::chrono::minutes idle = std::chrono::minutes(30)) : idle_(idle) {}

  Opened open(PeerPtr peer);
  // The live session the token names (its idle time starts again).
  std::optional<Session> find(std::string_view token);
  void close(std::string_view token);

 private:
  std::chrono::minutes idle_;
  std::mutex mutex_;
  std::unordered_map<std::string, Session> sessions_;
};

inline constexpr std::string_view session_cookie = "courier_session";

// Set-Cookie for a session: HttpOnly, SameSite=Strict, Secure over TLS.
// An empty token clears the cookie.
std::string session_cookie_header(std::string_view token, bool secure);

// A file of the console under `folder` for the path after /console/ ("" is
// index.html): its bytes and content type. Only plain names of known types
// are served, never a path out of the folder.
struct Asset {
  std::string body;
  std::string content_type;
};
std::optional<Asset> console_asset(const std::string& folder, std::string_view name);

// Tokens and CSRF values: 32 random bytes from OpenSSL, as hex.
std::string random_token();

}  // namespace courier::adapters
