#include "engine/metrics.h"

#include <pthread.h>
#include <time.h>

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
    // Spin until this thread has used 50 ms of CPU (several clock ticks),
    // however busy the machine is.
    const auto cpu_seconds = [] {
      timespec t{};
      clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
      return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) / 1e9;
    };
    volatile std::uint64_t spins = 0;
    while (cpu_seconds() < 0.05) spins = spins + 1;
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
  // Read after the threads; each time is rounded down to a clock tick.
  BOOST_TEST(process_seconds + 0.01 >= thread_seconds);
}

BOOST_AUTO_TEST_CASE(values_are_written_in_full_and_shortest) {
  courier::Metrics metrics;
  const courier::Labels labels{{"listener", "fhir"}, {"route", "orders"}, {"outcome", "accepted"}};
  metrics.add("courier_messages_received_total", labels, 100000);
  metrics.observe("courier_delivery_latency_seconds", {{"route", "orders"}, {"destination", "lab"}}, 0.2);
  const std::string text = metrics.prometheus_text();
  BOOST_TEST(
      sample(text,
             "courier_messages_received_total{listener=\"fhir\",route=\"orders\",outcome=\"accepted\"}") ==
      100000.0);
  BOOST_TEST(text.find(",outcome=\"accepted\"} 100000\n") != std::string::npos);
  BOOST_TEST(text.find("le=\"0.1\"") != std::string::npos);
  BOOST_TEST(text.find("e+") == std::string::npos);
}

BOOST_AUTO_TEST_SUITE_END()
