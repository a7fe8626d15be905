#include "adapters/http/console_support.h"

#include <openssl/rand.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace courier::adapters {

std::string random_token() {
  unsigned char bytes[32];
  if (RAND_bytes(bytes, sizeof bytes) != 1) throw std::runtime_error("OpenSSL could not make a random token");
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : bytes) {
    out += hex[b >> 4];
    out += hex[b & 15];
  }
  return out;
}

ConsoleSessions::Opened ConsoleSessions::open(PeerPtr peer) {
  Opened opened{random_token(), random_token()};
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mutex_);
  // Forget the sessions that ended, so that logins without logouts do not pile up.
  std::erase_if(sessions_, [&](const auto& entry) { return now - entry.second.last_used > idle_; });
  sessions_.emplace(opened.token, Session{std::move(peer), opened.csrf, now});
  return opened;
}

std::optional<ConsoleSessions::Session> ConsoleSessions::find(std::string_view token) {
  if (token.empty()) return std::nullopt;
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard lock(mutex_);
  auto it = sessions_.find(std::string(token));
  if (it == sessions_.end()) return std::nullopt;
  if (now - it->second.last_used > idle_) {
    sessions_.erase(it);
    return std::nullopt;
  }
  it->second.last_used = now;
  return it->second;
}

void ConsoleSessions::close(std::string_view token) {
  std::lock_guard lock(mutex_);
  sessions_.erase(std::string(token));
}

std::string session_cookie_header(std::string_view token, bool secure) {
  std::string out = std::string(session_cookie) + "=" + std::string(token) +
                    "; Path=/; HttpOnly; SameSite=Strict" + (secure ? "; Secure" : "");
  if (token.empty()) out += "; Max-Age=0";
  return out;
}

std::optional<Asset> console_asset(const std::string& folder, std::string_view name) {
  if (name.empty()) name = "index.html";
  for (char c : name) {
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '-' || c == '_' || c == '.';
    if (!plain) return std::nullopt;
  }
  if (name.starts_with('.')) return std::nullopt;
  static constexpr std::pair<std::string_view, std::string_view> types[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"}};
  for (const auto& [extension, type] : types) {
    if (!name.ends_with(extension)) continue;
    std::ifstream in(std::filesystem::path(folder) / std::string(name), std::ios::binary);
    if (!in) return std::nullopt;
    std::ostringstream bytes;
    bytes << in.rdbuf();
    return Asset{std::move(bytes).str(), std::string(type)};
  }
  return std::nullopt;
}

}  // namespace courier::adapters
