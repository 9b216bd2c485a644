// PerformanceMetrics: operations per second, parallel and SIMD utilisation, and export as JSON
// and Prometheus text.
#include <hetcache/scheduler.hpp>

#include <cstdio>
#include <sstream>
#include <string>

namespace hetcache {
namespace {

// Shortest round-trip form of a double, as JSON and Prometheus both accept.
std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

double percent(std::uint64_t part, std::uint64_t whole) {
  return whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole);
}

}  // namespace

double PerformanceMetrics::operations_per_second() const noexcept {
  return total_time_seconds > 0.0 ? static_cast<double>(total_operations) / total_time_seconds
                                  : 0.0;
}
double PerformanceMetrics::parallel_utilization() const noexcept {
  return percent(parallel_operations, total_operations);
}
double PerformanceMetrics::simd_utilization() const noexcept {
  return percent(simd_operations, total_operations);
}

std::string PerformanceMetrics::to_json() const {
  std::ostringstream o;
  o << "{\"total_operations\":" << total_operations
    << ",\"parallel_operations\":" << parallel_operations
    << ",\"simd_operations\":" << simd_operations
    << ",\"total_time_seconds\":" << number(total_time_seconds)
    << ",\"prefetch_hits\":" << prefetch_hits << ",\"prefetch_misses\":" << prefetch_misses
    << ",\"operations_per_second\":" << number(operations_per_second())
    << ",\"parallel_utilization\":" << number(parallel_utilization())
    << ",\"simd_utilization\":" << number(simd_utilization())
    << ",\"calibrations\":" << calibrations << ",\"tiers\":{";
  for (std::size_t i = 0; i < tiers.size(); ++i) {
    const TierMetrics& t = tiers[i];
    o << (i ? "," : "") << '"' << to_string(kAllTiers[i]) << "\":{\"operations\":" << t.operations
      << ",\"items\":" << t.items << ",\"busy_seconds\":" << number(t.busy_seconds)
      << ",\"decisions\":" << t.decisions << ",\"p50_us\":" << number(t.p50_us)
      << ",\"p95_us\":" << number(t.p95_us) << ",\"p99_us\":" << number(t.p99_us) << '}';
  }
  o << "}}";
  return o.str();
}

std::string PerformanceMetrics::to_prometheus() const {
  std::ostringstream o;
  const auto metric = [&](const char* name, const char* type, const char* help) {
    o << "# HELP hetcache_" << name << ' ' << help << "\n# TYPE hetcache_" << name << ' ' << type
      << '\n';
  };
  const auto counter = [&](const char* name, const char* help, const auto& value) {
    metric(name, "counter", help);
    o << "hetcache_" << name << ' ' << value << '\n';
  };
  counter("operations_total", "Operations run by the scheduler.", total_operations);
  counter("parallel_operations_total", "Operations that ran on more than one thread.",
          parallel_operations);
  counter("simd_operations_total", "Operations whose kernels ran SIMD instructions.",
          simd_operations);
  counter("operation_seconds_total", "Sum of operation latencies.", number(total_time_seconds));
  counter("prefetch_hits_total", "Lookups served by a prefetch set.", prefetch_hits);
  counter("prefetch_misses_total", "Lookups not served by a prefetch set.", prefetch_misses);
  counter("calibrations_total", "Calibration micro-benchmarks run.", calibrations);

  const auto per_tier = [&](const char* name, const char* type, const char* help,
                            const auto& value) {
    metric(name, type, help);
    for (std::size_t i = 0; i < tiers.size(); ++i)
      o << "hetcache_" << name << "{tier=\"" << to_string(kAllTiers[i]) << "\"} " << value(tiers[i])
        << '\n';
  };
  per_tier("tier_operations_total", "counter", "Operations run on each tier.",
           [](const TierMetrics& t) { return std::to_string(t.operations); });
  per_tier("tier_items_total", "counter", "Items (keys or candidates) processed on each tier.",
           [](const TierMetrics& t) { return std::to_string(t.items); });
  per_tier("tier_busy_seconds_total", "counter", "Time operations spent on each tier.",
           [](const TierMetrics& t) { return number(t.busy_seconds); });
  per_tier("tier_decisions_total", "counter", "Times a strategy chose each tier.",
           [](const TierMetrics& t) { return std::to_string(t.decisions); });
  metric("tier_latency_seconds", "summary", "Operation latency per tier (quantiles within 9%).");
  for (std::size_t i = 0; i < tiers.size(); ++i) {
    const TierMetrics& t = tiers[i];
    const std::string tier(to_string(kAllTiers[i]));
    const std::pair<const char*, double> quantiles[] = {
        {"0.5", t.p50_us}, {"0.95", t.p95_us}, {"0.99", t.p99_us}};
    for (const auto& [q, us] : quantiles)
      o << "hetcache_tier_latency_seconds{tier=\"" << tier << "\",quantile=\"" << q << "\"} "
        << number(us / 1e6) << '\n';
    o << "hetcache_tier_latency_seconds_sum{tier=\"" << tier << "\"} " << number(t.busy_seconds)
      << '\n';
    o << "hetcache_tier_latency_seconds_count{tier=\"" << tier << "\"} " << t.operations << '\n';
  }
  return o.str();
}

}  // namespace hetcache
