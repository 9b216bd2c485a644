// Private: the Adaptive scheduler's per-machine calibration -- for each kind of work and tier, a
// fixed overhead and a cost per unit of work, plus the host-to-GPU link bandwidth -- measured by a
// short micro-benchmark and cached in a text file per machine.
#pragma once

#include <hetcache/scheduler.hpp>

#include <array>
#include <optional>
#include <string>

namespace hetcache::scheduler {

// The kinds of work the model distinguishes, and their unit:
//   Similarity: multiply-adds (queries x candidates x dim); GetBatch: keys; PutBatch: floats.
enum class ModelOp { Similarity = 0, GetBatch = 1, PutBatch = 2 };
inline constexpr int kModelOps = 3;
inline constexpr int kTiers = static_cast<int>(kAllTiers.size());

ModelOp model_op(OpKind op) noexcept;
double work_units(const Work& work) noexcept;

struct TierModel {
  bool usable = false;  // measured (or estimated) for this machine
  double overhead_us = 0.0;
  double us_per_unit = 0.0;
};

struct Calibration {
  std::string machine_key;
  std::array<std::array<TierModel, kTiers>, kModelOps> models{};
  double link_gb_per_s = 0.0;  // host to GPU; 0 without a GPU
  double seconds = 0.0;        // how long the micro-benchmark took

  const TierModel& model(ModelOp op, Tier tier) const {
    return models[static_cast<int>(op)][static_cast<int>(tier)];
  }
  TierModel& model(ModelOp op, Tier tier) {
    return models[static_cast<int>(op)][static_cast<int>(tier)];
  }

  std::string serialize() const;
  // nullopt for a file that does not parse (it is then measured again and rewritten).
  static std::optional<Calibration> parse(const std::string& text);
};

// Rough figures for a machine nobody measured (SchedulerConfig::calibrate = false).
Calibration estimated_calibration(const std::string& machine_key, std::size_t cpu_threads,
                                  bool gpu);

// The micro-benchmark (well under 2 s): similarity search on each compute tier, memory-tier
// get_batch / put_batch on each I/O tier, and the link to the GPU when there is one.
Calibration measure_calibration(const std::string& machine_key, const SchedulerConfig& config,
                                const SimilarityEngine& engine, bool gpu);

// "CPU model | hardware threads | ISA | GPU or none | model version".
std::string machine_key(Isa isa, const std::string& gpu_description);
std::string calibration_directory(const std::string& configured);
std::string calibration_path(const std::string& directory, const std::string& machine_key);

std::optional<Calibration> load_calibration(const std::string& path,
                                            const std::string& machine_key);
// Written to a temporary file and renamed, so a reader never sees half a file. Failing to write
// is not an error (the calibration is then measured again next time).
bool save_calibration(const std::string& path, const Calibration& calibration);

}  // namespace hetcache::scheduler
