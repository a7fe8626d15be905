// Counters, gauges and histograms, rendered as Prometheus text for /metrics.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace courier {

// Label names are literals; values are copied, since they are often built on the spot.
using Labels = std::vector<std::pair<std::string_view, std::string>>;

class Metrics {
 public:
  enum class Type { counter, gauge, histogram };

  Metrics();

  void add(std::string_view name, const Labels& labels, double delta = 1);
  void set(std::string_view name, const Labels& labels, double value);
  void observe(std::string_view name, const Labels& labels, double value);

  // The sum over the series whose labels include every one of `match`
  // (a histogram's: its count), for the operator's dashboard.
  double total(std::string_view name, const Labels& match) const;

  // The Prometheus text exposition format, version 0.0.4; CPU times are
  // read afresh first.
  std::string prometheus_text();

 private:
  struct Series {
    double value = 0;  // counter, gauge; histogram: the sum
    std::vector<std::uint64_t> buckets;
    std::uint64_t count = 0;
  };
  struct Family {
    Type type;
    std::string help;
    std::map<std::string, Series> series;  // by rendered label set
  };

  void define(std::string name, Type type, std::string help);
  Series& series(std::string_view name, const Labels& labels);

  mutable std::mutex mutex_;
  std::map<std::string, Family, std::less<>> families_;
};

}  // namespace courier
