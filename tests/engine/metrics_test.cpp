#include "engine/metrics.h"

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>

#include <boost/test/unit_test.hpp>

namespace {

// The value of the sample line that starts with `series`, or -1.
double sample(const std::string& text, const std::string& series) {
  const std::size_t at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

}  // namespace

BOOST_AUTO_TEST_SUITE(metrics)

BOOST_AUTO_TEST_CASE(cpu_time_is_reported_per_named_thread) {
  std::atomic<bool> busy_done = false;
  std::atomic<bool> release = false;
  std::thread busy([&] {
    pthread_setname_np(pthread_self(), "busy-test");
    // Spin for 200 ms of wall time: at least one clock tick of CPU.
    const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
    volatile std::uint64_t spins = 0;
    while (std::chrono::steady_clock::now() < until) spins = spins + 1;
    busy_done = true;
    while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  });
  while (!busy_done) std::this_thread::sleep_for(std::chrono::milliseconds(1));

  courier::Metrics metrics;
  const std::string text = metrics.prometheus_text();
  release = true;
  busy.join();

  BOOST_TEST(text.find("# TYPE courier_thread_cpu_seconds_total counter") != std::string::npos);
  const double thread_seconds = sample(text, "courier_thread_cpu_seconds_total{thread=\"busy-test\"}");
  const double process_seconds = sample(text, "process_cpu_seconds_total");
  BOOST_TEST(thread_seconds > 0.0);
  BOOST_TEST(thread_seconds < 5.0);
  BOOST_TEST(process_seconds >= thread_seconds);
}

BOOST_AUTO_TEST_SUITE_END()
