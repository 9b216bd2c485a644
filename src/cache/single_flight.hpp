// Private: one computation per missing key, however many callers miss it at once.
//
// The first caller to miss a key leads its flight; later callers join and wait for the leader to
// complete it with the vector or fail it with the exception, which every waiter then rethrows.
// Waiting blocks the calling thread (a condition variable); the fiber pool wraps this.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace hetcache::cache {

class SingleFlight {
 public:
  struct Flight {
    std::mutex mutex;
    std::condition_variable done_signal;
    bool done = false;
    std::exception_ptr error;
    std::vector<float> value;
  };

  // The key's flight, and true when the caller is its leader (and must complete or fail it).
  std::pair<std::shared_ptr<Flight>, bool> join(const std::string& key) {
    Table& table = table_for(key);
    std::lock_guard lock(table.mutex);
    auto [it, inserted] = table.flights.try_emplace(key);
    if (inserted) it->second = std::make_shared<Flight>();
    return {it->second, inserted};
  }

  void complete(const std::string& key, const std::shared_ptr<Flight>& flight, const float* value,
                std::size_t dim) {
    {
      std::lock_guard lock(flight->mutex);
      flight->value.assign(value, value + dim);
      flight->done = true;
    }
    finish(key, flight);
  }

  // Does nothing to a flight already completed, so a leader that throws part-way can fail all of
  // its flights without tracking which ones it finished.
  void fail(const std::string& key, const std::shared_ptr<Flight>& flight,
            std::exception_ptr error) {
    {
      std::lock_guard lock(flight->mutex);
      if (flight->done) return;
      flight->error = std::move(error);
      flight->done = true;
    }
    finish(key, flight);
  }

  // Blocks until the flight is done; rethrows its error.
  static const std::vector<float>& wait(Flight& flight) {
    std::unique_lock lock(flight.mutex);
    flight.done_signal.wait(lock, [&] { return flight.done; });
    if (flight.error) std::rethrow_exception(flight.error);
    return flight.value;
  }

 private:
  static constexpr std::size_t kTables = 16;
  struct Table {
    std::mutex mutex;
    std::unordered_map<std::string, std::shared_ptr<Flight>> flights;
  };

  Table& table_for(std::string_view key) {
    return tables_[std::hash<std::string_view>{}(key) % kTables];
  }

  void finish(const std::string& key, const std::shared_ptr<Flight>& flight) {
    {
      Table& table = table_for(key);
      std::lock_guard lock(table.mutex);
      const auto it = table.flights.find(key);
      if (it != table.flights.end() && it->second == flight) table.flights.erase(it);
    }
    flight->done_signal.notify_all();
  }

  Table tables_[kTables];
};

}  // namespace hetcache::cache
