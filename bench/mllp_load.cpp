// The MLLP load generator: CONNECTIONS connections, each sending the
// message in FILE (its "{ID}" replaced by a number unique to each message,
// so that nothing is a duplicate), waiting for the ACK, and sending the next,
// for SECONDS. With --rate it paces itself to that many messages a second in
// all. Prints "messages/s p50_ms p99_ms errors"; an ACK other than AA or CA
// counts as an error. With --tls CA_FILE each connection speaks TLS,
// verifying the server against that CA; with --reconnect 1 each message
// goes over a new connection (a new handshake, for TLS).
// Usage: mllp_load PORT CONNECTIONS SECONDS FILE [--rate N] [--tls CA_FILE] [--reconnect 1]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Result {
  std::vector<double> latencies_ms;
  std::size_t errors = 0;
};

int connect_to(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<std::uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.1", &address.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    std::perror("connect");
    std::exit(1);
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

// A connection, plain or TLS.
struct Link {
  int fd = -1;
  SSL* ssl = nullptr;
  bool send_all(const std::string& data) const {
    if (ssl != nullptr)
      return SSL_write(ssl, data.data(), static_cast<int>(data.size())) == static_cast<int>(data.size());
    return ::send(fd, data.data(), data.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(data.size());
  }
  ssize_t receive(char* buffer, std::size_t size) const {
    if (ssl != nullptr) return SSL_read(ssl, buffer, static_cast<int>(size));
    return ::recv(fd, buffer, size, 0);
  }
  void close() {
    if (ssl != nullptr) SSL_free(ssl);
    ::close(fd);
  }
};

SSL_CTX* tls_context = nullptr;  // set by --tls
bool reconnect = false;          // set by --reconnect

Link open_link(int port) {
  Link link{connect_to(port), nullptr};
  if (tls_context == nullptr) return link;
  link.ssl = SSL_new(tls_context);
  SSL_set_fd(link.ssl, link.fd);
  SSL_set1_host(link.ssl, "localhost");
  if (SSL_connect(link.ssl) != 1) {
    std::cerr << "TLS handshake failed\n";
    std::exit(1);
  }
  return link;
}

void run(int port, const std::string& message, int connection, Clock::time_point end, double interval_s,
         std::atomic<long>& counter, Result& result) {
  Link link = open_link(port);
  std::string pending;
  char buffer[8192];
  Clock::time_point next = Clock::now();
  while (Clock::now() < end) {
    if (interval_s > 0) {
      std::this_thread::sleep_until(next);
      next += std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(interval_s));
    }
    std::string text = message;
    const std::string id = std::to_string(connection) + "-" + std::to_string(counter.fetch_add(1));
    for (std::size_t at; (at = text.find("{ID}")) != std::string::npos;) text.replace(at, 4, id);
    const std::string frame = "\x0b" + text + "\x1c\r";
    const Clock::time_point start = Clock::now();
    if (reconnect && link.fd < 0) link = open_link(port);
    if (!link.send_all(frame)) break;
    std::size_t end_at;
    while ((end_at = pending.find("\x1c\r")) == std::string::npos) {
      const ssize_t n = link.receive(buffer, sizeof buffer);
      if (n <= 0) {
        link.close();
        ++result.errors;
        return;
      }
      pending.append(buffer, static_cast<std::size_t>(n));
    }
    const std::string ack = pending.substr(0, end_at);
    pending.erase(0, end_at + 2);
    if (reconnect) {
      if (link.ssl != nullptr) SSL_shutdown(link.ssl);
      link.close();
      link = Link{};
    }
    result.latencies_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    if (ack.find("MSA|AA|") == std::string::npos && ack.find("MSA|CA|") == std::string::npos) ++result.errors;
  }
  if (link.fd >= 0) link.close();
}

}  // namespace

int main(int argc, char** argv) {
  double rate = 0;
  for (int i = 5; i + 1 < argc; i += 2) {
    const std::string option = argv[i];
    if (option == "--rate") {
      rate = std::stod(argv[i + 1]);
    } else if (option == "--reconnect") {
      reconnect = std::string(argv[i + 1]) == "1";
    } else if (option == "--tls") {
      tls_context = SSL_CTX_new(TLS_client_method());
      SSL_CTX_load_verify_locations(tls_context, argv[i + 1], nullptr);
      SSL_CTX_set_verify(tls_context, SSL_VERIFY_PEER, nullptr);
    }
  }
  if (argc < 5 || argc % 2 == 0) {
    std::cerr
        << "usage: mllp_load PORT CONNECTIONS SECONDS FILE [--rate N] [--tls CA_FILE] [--reconnect 1]\n";
    return 2;
  }
  const int port = std::stoi(argv[1]);
  const int connections = std::stoi(argv[2]);
  const double seconds = std::stod(argv[3]);
  std::ifstream in(argv[4]);
  std::stringstream text;
  text << in.rdbuf();
  std::string message = text.str();
  std::replace(message.begin(), message.end(), '\n', '\r');
  const double interval = rate > 0 ? connections / rate : 0;

  std::vector<Result> results(static_cast<std::size_t>(connections));
  std::vector<std::thread> threads;
  std::atomic<long> counter{0};
  const Clock::time_point start = Clock::now();
  const Clock::time_point end =
      start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  for (int i = 0; i < connections; ++i) {
    threads.emplace_back(run, port, std::cref(message), i, end, interval, std::ref(counter),
                         std::ref(results[static_cast<std::size_t>(i)]));
  }
  for (std::thread& thread : threads) thread.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  std::size_t errors = 0;
  for (const Result& result : results) {
    all.insert(all.end(), result.latencies_ms.begin(), result.latencies_ms.end());
    errors += result.errors;
  }
  std::sort(all.begin(), all.end());
  auto percentile = [&](double p) {
    return all.empty() ? 0.0 : all[static_cast<std::size_t>(p * (all.size() - 1))];
  };
  std::printf("%.0f %.2f %.2f %zu\n", static_cast<double>(all.size()) / elapsed, percentile(0.5),
              percentile(0.99), errors);
}
