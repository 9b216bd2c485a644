// The Resources: futures from any thread, exceptions through futures, fibers that wait without
// blocking their thread, work stealing across threads, and a clean shutdown.
#include <hetcache/error.hpp>
#include <hetcache/resources.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <numeric>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

namespace hetcache {
namespace {

TEST(Resources, SubmitReturnsValuesFromEveryPool) {
  Resources runtime(ResourcesOptions{.fiber_threads = 2, .io_threads = 2, .cpu_threads = 2});
  EXPECT_EQ(runtime.submit([] { return 41 + 1; }).get(), 42);
  EXPECT_EQ(runtime.submit_io([] { return std::string("io"); }).get(), "io");
  EXPECT_EQ(runtime.submit_cpu([] { return 7; }).get(), 7);
  bool ran = false;
  runtime.submit([&] { ran = true; }).get();
  EXPECT_TRUE(ran);
  const ResourcesStats s = runtime.stats();
  EXPECT_EQ(s.fiber_threads, 2u);
  EXPECT_GE(s.fibers_started, 2u);
  EXPECT_EQ(s.io_calls, 1u);
  EXPECT_EQ(s.cpu_calls, 1u);
}

TEST(Resources, ExceptionsReachTheCaller) {
  Resources runtime(ResourcesOptions{.fiber_threads = 1});
  auto fiber = runtime.submit([]() -> int { throw std::runtime_error("from a fiber"); });
  auto io = runtime.submit_io([] { throw Error(ErrorCode::StoreUnavailable, "from I/O"); });
  auto cpu = runtime.submit_cpu([] { throw std::logic_error("from the arena"); });
  EXPECT_THROW(fiber.get(), std::runtime_error);
  try {
    io.get();
    FAIL() << "no exception";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::StoreUnavailable);
  }
  EXPECT_THROW(cpu.get(), std::logic_error);
}

TEST(Resources, InFiberPoolOnlyOnItsThreads) {
  Resources runtime(ResourcesOptions{.fiber_threads = 1});
  Resources other(ResourcesOptions{.fiber_threads = 1});
  EXPECT_FALSE(runtime.in_fiber_pool());
  EXPECT_TRUE(runtime.submit([&] { return runtime.in_fiber_pool(); }).get());
  EXPECT_FALSE(other.submit([&] { return runtime.in_fiber_pool(); }).get());
  EXPECT_FALSE(runtime.submit_io([&] { return runtime.in_fiber_pool(); }).get());
}

// One fiber thread: a parent fiber waits for children it spawned on the same thread. A wait that
// blocked the thread would never let the children run.
TEST(Resources, FibersWaitingOnFibersNeedOnlyOneThread) {
  Resources runtime(ResourcesOptions{.fiber_threads = 1});
  auto parent = runtime.submit([&] {
    std::vector<Future<int>> children;
    for (int i = 0; i < 200; ++i) children.push_back(runtime.submit([i] { return i; }));
    int sum = 0;
    for (auto& c : children) sum += c.get();
    return sum;
  });
  ASSERT_TRUE(parent.wait_for(std::chrono::seconds(30))) << "the parent fiber blocked its thread";
  EXPECT_EQ(parent.get(), 199 * 200 / 2);
}

// A ping-pong between two fibers on one thread through promises: each must suspend for the
// other to run.
TEST(Resources, PromisesHandOffBetweenFibersOnOneThread) {
  Resources runtime(ResourcesOptions{.fiber_threads = 1});
  constexpr int kRounds = 1000;
  std::vector<Promise<int>> ping(kRounds), pong(kRounds);
  std::vector<Future<int>> ping_f, pong_f;
  for (int i = 0; i < kRounds; ++i) {
    ping_f.push_back(ping[i].get_future());
    pong_f.push_back(pong[i].get_future());
  }
  auto a = runtime.submit([&] {
    int total = 0;
    for (int i = 0; i < kRounds; ++i) {
      ping[i].set_value(i);
      total += pong_f[i].get();
    }
    return total;
  });
  auto b = runtime.submit([&] {
    for (int i = 0; i < kRounds; ++i) pong[i].set_value(ping_f[i].get() * 2);
  });
  ASSERT_TRUE(a.wait_for(std::chrono::seconds(30)));
  b.get();
  EXPECT_EQ(a.get(), kRounds * (kRounds - 1));
}

// Fibers that wait on I/O and CPU work: the fiber thread stays free meanwhile.
TEST(Resources, FibersWaitOnIoAndCpuWithoutBlocking) {
  Resources runtime(ResourcesOptions{.fiber_threads = 1, .io_threads = 2, .cpu_threads = 2});
  std::atomic<int> concurrent{0}, peak{0};
  std::vector<Future<int>> results;
  for (int i = 0; i < 16; ++i) {
    results.push_back(runtime.submit([&, i] {
      auto io = runtime.submit_io([&] {
        const int now = ++concurrent;
        int seen = peak.load();
        while (now > seen && !peak.compare_exchange_weak(seen, now)) {
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        --concurrent;
        return i;
      });
      auto cpu = runtime.submit_cpu([i] { return i * 10; });
      return io.get() + cpu.get();
    }));
  }
  int sum = 0;
  for (auto& r : results) sum += r.get();
  EXPECT_EQ(sum, 11 * (15 * 16 / 2));
  // Both I/O threads were busy at once: the single fiber thread kept submitting while others
  // waited.
  EXPECT_EQ(peak.load(), 2);
}

TEST(Resources, WorkIsStolenAcrossThreads) {
  Resources runtime(ResourcesOptions{.fiber_threads = 2});
  std::mutex mutex;
  std::set<std::thread::id> threads;
  std::thread::id parent_thread;
  // One fiber spawns many children on its own thread and keeps its thread busy while it does; the
  // idle thread must steal some. (How many each thread runs depends on timing: under TSan,
  // spawning is so slow that the thief takes every child before the parent waits.)
  runtime
      .submit([&] {
        parent_thread = std::this_thread::get_id();
        std::vector<Future<void>> children;
        for (int i = 0; i < 2000; ++i) {
          children.push_back(runtime.submit([&] {
            const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
            while (std::chrono::steady_clock::now() < until) {
            }
            std::lock_guard lock(mutex);
            threads.insert(std::this_thread::get_id());
          }));
        }
        for (auto& c : children) c.get();
      })
      .get();
  EXPECT_TRUE(threads.size() == 2 || (threads.size() == 1 && !threads.contains(parent_thread)))
      << "children ran only on the parent's thread";
  EXPECT_GT(runtime.stats().steals, 0u);
}

TEST(Resources, ShutdownFinishesAcceptedWork) {
  std::atomic<int> finished{0};
  std::vector<Future<void>> pending;
  {
    Resources runtime(ResourcesOptions{.fiber_threads = 2, .io_threads = 1});
    for (int i = 0; i < 100; ++i) {
      pending.push_back(runtime.submit([&] {
        runtime.submit_io([] { std::this_thread::sleep_for(std::chrono::microseconds(200)); })
            .get();
        ++finished;
      }));
    }
  }  // the destructor waits for all 100
  EXPECT_EQ(finished.load(), 100);
  for (auto& p : pending) EXPECT_TRUE(p.ready());
}

TEST(Resources, RejectsBadOptions) {
  EXPECT_THROW(Resources(ResourcesOptions{.io_threads = 0}), Error);
  EXPECT_THROW(Resources(ResourcesOptions{.fiber_stack_bytes = 1024}), Error);
}

TEST(Resources, ManyRuntimesOneAfterAnother) {
  for (int i = 0; i < 20; ++i) {
    Resources runtime(ResourcesOptions{.fiber_threads = 2, .io_threads = 1, .cpu_threads = 1});
    EXPECT_EQ(runtime.submit([i] { return i; }).get(), i);
  }
  EXPECT_EQ(Resources::shared()->submit([] { return 3; }).get(), 3);
  EXPECT_EQ(Resources::shared().get(), Resources::shared().get());
}

// Frames with stack arrays (ASan puts redzones around each) several levels deep.
[[gnu::noinline]] void throw_from_deep_frames(int depth) {
  volatile char pad[512];
  pad[0] = static_cast<char>(depth);
  if (depth == 0) throw std::runtime_error("thrown deep on a fiber");
  throw_from_deep_frames(depth - 1);
  pad[1] = pad[0];
}

// Reads the clock at every level of a recursion: libstdc++'s steady_clock::now() is not
// instrumented, so the clock_gettime it makes writes into a frame nobody unpoisoned, and ASan's
// interceptor checks those bytes. Small frames, so the probes cover the stack finely.
[[gnu::noinline]] long read_clock_at_depth(int depth) {
  volatile char pad[24];
  pad[0] = static_cast<char>(depth);
  const long now = std::chrono::steady_clock::now().time_since_epoch().count();
  return depth == 0 ? now : read_clock_at_depth(depth - 1) + pad[0];
}

struct ReadsTheClockOnExit {
  ~ReadsTheClockOnExit() { read_clock_at_depth(64); }
};

// An exception unwinds frames on a fiber's stack; a destructor run by that unwinding, and later
// frames after the fiber was suspended and resumed (perhaps on the other thread), reuse the same
// stack. Under AddressSanitizer the unwound frames' redzones must be gone by then (ASan clears
// them at the throw only when it knows the fiber's stack), or the writes below report a false
// stack-buffer-overflow. Without ASan it checks that exceptions and waits mix on fibers.
TEST(Resources, FramesUnwoundOnAFiberCanBeReused) {
  Resources runtime(ResourcesOptions{.fiber_threads = 2, .io_threads = 1, .cpu_threads = 1});
  std::vector<Future<int>> fibers;
  for (int f = 0; f < 8; ++f) {
    fibers.push_back(runtime.submit([&runtime, f] {
      int caught = 0;
      for (int round = 0; round < 20; ++round) {
        try {
          const ReadsTheClockOnExit on_exit;
          throw_from_deep_frames(8);
        } catch (const std::runtime_error&) {
          ++caught;
        }
        caught += runtime.submit([f] { return f - f; }).get();  // suspends this fiber
        read_clock_at_depth(64);
      }
      return caught;
    }));
  }
  for (auto& fiber : fibers) EXPECT_EQ(fiber.get(), 20);
}

TEST(Resources, BrokenPromiseFailsTheFuture) {
  Future<int> future;
  {
    Promise<int> promise;
    future = promise.get_future();
  }
  EXPECT_THROW(future.get(), std::future_error);
}

TEST(Resources, OnReadyRunsOnceWhenTheWorkCompletesOrAtOnceWhenItHas) {
  Resources runtime(ResourcesOptions{.fiber_threads = 2, .io_threads = 1, .cpu_threads = 2});
  // Registered before completion: runs on the completing thread, after get() could return.
  std::atomic<int> calls{0};
  std::atomic<bool> on_fiber{false};
  Promise<void> release;
  Future<void> gate = release.get_future();
  Future<int> pending = runtime.submit([&] {
    gate.wait();
    return 5;
  });
  pending.on_ready([&] {
    on_fiber = runtime.in_fiber_pool();
    ++calls;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(calls.load(), 0) << "ran before the work completed";
  release.set_value();
  EXPECT_EQ(pending.get(), 5);
  for (int i = 0; i < 1000 && calls.load() == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(calls.load(), 1);
  EXPECT_TRUE(on_fiber.load()) << "not run by the thread that completed the work";
  // Registered after completion: at once, on this thread.
  Future<int> done = runtime.submit([] { return 1; });
  done.wait();
  const auto me = std::this_thread::get_id();
  std::thread::id ran_on;
  done.on_ready([&] { ran_on = std::this_thread::get_id(); });
  EXPECT_EQ(ran_on, me);
  // A failed future is ready too, and a callback that throws does not stop the others.
  Promise<int> failing;
  Future<int> failed = failing.get_future();
  int after_throw = 0;
  failed.on_ready([] { throw std::runtime_error("dropped"); });
  failed.on_ready([&] { ++after_throw; });
  failing.set_exception(std::make_exception_ptr(std::runtime_error("work failed")));
  EXPECT_EQ(after_throw, 1);
  EXPECT_THROW(failed.get(), std::runtime_error);
}

}  // namespace
}  // namespace hetcache
