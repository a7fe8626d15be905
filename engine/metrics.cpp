#include "engine/metrics.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>

namespace courier {

namespace {

// Delivery latency buckets, in seconds.
constexpr double bucket_bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                                    0.5,   1,      2.5,   5,    10,    30,   60};

std::string render_labels(const Labels& labels) {
  std::string out;
  for (const auto& [name, value] : labels) {
    out += out.empty() ? "" : ",";
    out.append(name);
    out += "=\"";
    for (const char c : value) {
      if (c == '\\' || c == '"') out += '\\';
      if (c == '\n') {
        out += "\\n";
        continue;
      }
      out += c;
    }
    out += '"';
  }
  return out;
}

// The shortest text that reads back as the same double, never in exponent
// form (100000, not 1e+05).
std::string number(double value) {
  char text[400];  // a double in fixed notation takes at most about 330 (5e-324)
  const auto [end, ec] = std::to_chars(text, text + sizeof text, value, std::chars_format::fixed);
  return std::string(text, ec == std::errc() ? end : text);
}

}  // namespace

Metrics::Metrics() {
  define("courier_messages_received_total", Type::counter,
         "Messages received, by listener, route and outcome (accepted, duplicate, response, rejected).");
  define("courier_deliveries_total", Type::counter,
         "Delivery attempts finished, by route, destination and outcome (delivered, retry, failed, parked).");
  define("courier_delivery_retries_total", Type::counter, "Delivery attempts that will be retried.");
  define("courier_dead_letters_total", Type::counter, "Deliveries parked after their retries ran out.");
  define("courier_delivery_queue_depth", Type::gauge,
         "Deliveries waiting or in flight, by route and destination.");
  define("process_cpu_seconds_total", Type::counter,
         "CPU time courier has used, user and system, in seconds.");
  define("courier_thread_cpu_seconds_total", Type::counter,
         "CPU time of courier's running threads by name, in seconds (threads of one name summed).");
  define("courier_conversations_in_memory", Type::gauge,
         "Conversations the engine holds in memory: those with deliveries or responses under way.");
  define("courier_deliveries_in_store_only", Type::gauge,
         "Deliveries of a backlog past deliveries-in-memory, waiting in the store only, by route and "
         "destination.");
  define("courier_delivery_latency_seconds", Type::histogram,
         "Time from receipt of a message to its successful delivery, by route and destination.");
  define("courier_responses_relayed_total", Type::counter,
         "Responses and progress messages relayed to placers.");
  define("courier_tls_handshakes_total", Type::counter,
         "TLS handshakes on listeners, by listener and outcome (ok, failed).");
  define("courier_access_refused_total", Type::counter,
         "Requests and messages refused to peers, by listener and reason (unauthenticated, forbidden).");
}

void Metrics::define(std::string name, Type type, std::string help) {
  families_.emplace(std::move(name), Family{type, std::move(help), {}});
}

Metrics::Series& Metrics::series(std::string_view name, const Labels& labels) {
  auto family = families_.find(name);
  if (family == families_.end()) throw std::logic_error("undefined metric " + std::string(name));
  Series& s = family->second.series[render_labels(labels)];
  if (family->second.type == Type::histogram && s.buckets.empty()) s.buckets.resize(std::size(bucket_bounds));
  return s;
}

void Metrics::add(std::string_view name, const Labels& labels, double delta) {
  std::lock_guard lock(mutex_);
  series(name, labels).value += delta;
}

void Metrics::set(std::string_view name, const Labels& labels, double value) {
  std::lock_guard lock(mutex_);
  series(name, labels).value = value;
}

void Metrics::observe(std::string_view name, const Labels& labels, double value) {
  std::lock_guard lock(mutex_);
  Series& s = series(name, labels);
  s.value += value;
  ++s.count;
  for (std::size_t i = 0; i < std::size(bucket_bounds); ++i) {
    if (value <= bucket_bounds[i]) ++s.buckets[i];
  }
}

double Metrics::total(std::string_view name, const Labels& match) const {
  std::vector<std::string> wanted;
  for (const auto& pair : match) wanted.push_back("," + render_labels({pair}) + ",");
  std::lock_guard lock(mutex_);
  auto family = families_.find(name);
  if (family == families_.end()) return 0;
  double sum = 0;
  for (const auto& [labels, s] : family->second.series) {
    const std::string framed = "," + labels + ",";
    if (std::all_of(wanted.begin(), wanted.end(),
                    [&](const std::string& w) { return framed.find(w) != std::string::npos; }))
      sum += family->second.type == Type::histogram ? static_cast<double>(s.count) : s.value;
  }
  return sum;
}

namespace {

struct CpuTime {
  std::string name;
  double seconds = 0;
};

// utime + stime and the name of a /proc stat file (of the process, or of one
// of its threads).
std::optional<CpuTime> read_cpu_time(const std::filesystem::path& stat_file) {
  std::ifstream in(stat_file);
  std::string line;
  if (!std::getline(in, line)) return std::nullopt;
  // The name is in parentheses and may hold spaces or parentheses itself.
  const std::size_t open = line.find('(');
  const std::size_t close = line.rfind(')');
  if (open == std::string::npos || close == std::string::npos || close < open) return std::nullopt;
  std::istringstream fields(line.substr(close + 1));
  std::string skipped;
  for (int field = 3; field <= 13; ++field) fields >> skipped;  // state .. cmajflt
  double utime = 0;
  double stime = 0;
  if (!(fields >> utime >> stime)) return std::nullopt;
  static const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  return CpuTime{line.substr(open + 1, close - open - 1), (utime + stime) / ticks};
}

}  // namespace

// Read when scraped: which of courier's threads a load keeps busy (they are
// named: courier-io, store-writer, file-sender, housekeeper) is the first
// question when courier falls behind. The threads first, then the process,
// so that the process's time is never read as less than its threads'.
std::string Metrics::prometheus_text() {
  std::map<std::string, double> by_thread;
  std::error_code ec;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    if (const auto thread = read_cpu_time(task.path() / "stat")) by_thread[thread->name] += thread->seconds;
  }
  const std::optional<CpuTime> process = read_cpu_time("/proc/self/stat");

  std::lock_guard lock(mutex_);
  // Counters never go down: not when a thread ends and its time leaves the
  // sum, nor when two scrapes overtake each other.
  const auto raise = [this](std::string_view name, const Labels& labels, double seconds) {
    Series& s = series(name, labels);
    s.value = std::max(s.value, seconds);
  };
  if (process) raise("process_cpu_seconds_total", {}, process->seconds);
  for (const auto& [name, seconds] : by_thread)
    raise("courier_thread_cpu_seconds_total", {{"thread", name}}, seconds);

  std::string out;
  for (const auto& [name, family] : families_) {
    static constexpr const char* type_names[] = {"counter", "gauge", "histogram"};
    out += "# HELP " + name + " " + family.help + "\n";
    out += "# TYPE " + name + " " + type_names[static_cast<int>(family.type)] + "\n";
    for (const auto& [labels, s] : family.series) {
      const std::string braces = labels.empty() ? "" : "{" + labels + "}";
      if (family.type != Type::histogram) {
        out += name + braces + " " + number(s.value) + "\n";
        continue;
      }
      const std::string prefix = labels.empty() ? "" : labels + ",";
      for (std::size_t i = 0; i < std::size(bucket_bounds); ++i) {
        out += name + "_bucket{" + prefix + "le=\"" + number(bucket_bounds[i]) + "\"} " +
               std::to_string(s.buckets[i]) + "\n";
      }
      out += name + "_bucket{" + prefix + "le=\"+Inf\"} " + std::to_string(s.count) + "\n";
      out += name + "_sum" + braces + " " + number(s.value) + "\n";
      out += name + "_count" + braces + " " + std::to_string(s.count) + "\n";
    }
  }
  return out;
}

}  // namespace courier
