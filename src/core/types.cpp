// src/core: the vocabulary every part shares -- errors (error.cpp), matrices and views
// (matrix.cpp), metrics, tiers, ISAs and precisions with their names (this file). It owns no
// threads, devices or data, and includes nothing else from src/.
#include <hetcache/compact.hpp>
#include <hetcache/error.hpp>
#include <hetcache/hetcache.hpp>
#include <hetcache/types.hpp>

#include <string>

#include "core/ascii.hpp"

namespace hetcache {

const char* version() noexcept { return HETCACHE_VERSION; }

bool built_with_cuda() noexcept {
#if defined(HETCACHE_WITH_CUDA)
  return true;
#else
  return false;
#endif
}

std::string_view to_string(Metric metric) noexcept {
  switch (metric) {
    case Metric::Dot:
      return "dot";
    case Metric::Cosine:
      return "cosine";
    case Metric::L2:
      return "l2";
  }
  return "?";
}

std::string_view to_string(Tier tier) noexcept {
  switch (tier) {
    case Tier::Sequential:
      return "sequential";
    case Tier::Fiber:
      return "fiber";
    case Tier::Cpu:
      return "cpu";
    case Tier::Gpu:
      return "gpu";
  }
  return "?";
}

std::string_view to_string(Isa isa) noexcept {
  switch (isa) {
    case Isa::Scalar:
      return "scalar";
    case Isa::Avx2:
      return "avx2";
    case Isa::Avx512:
      return "avx512";
  }
  return "?";
}

std::string_view to_string(Precision precision) noexcept {
  switch (precision) {
    case Precision::F32:
      return "f32";
    case Precision::Tf32:
      return "tf32";
    case Precision::Bf16:
      return "bf16";
    case Precision::F16:
      return "f16";
  }
  return "?";
}

Precision parse_precision(std::string_view text) {
  const std::string s = ascii_lower(text);
  if (s == "f32") return Precision::F32;
  if (s == "tf32") return Precision::Tf32;
  if (s == "bf16") return Precision::Bf16;
  if (s == "f16" || s == "fp16") return Precision::F16;
  throw Error(ErrorCode::InvalidArgument,
              "unknown precision '" + std::string(text) + "' (expected f32, tf32, bf16 or f16)");
}

Metric parse_metric(std::string_view text) {
  const std::string s = ascii_lower(text);
  if (s == "dot" || s == "ip") return Metric::Dot;
  if (s == "cosine" || s == "cos") return Metric::Cosine;
  if (s == "l2") return Metric::L2;
  throw Error(ErrorCode::InvalidArgument,
              "unknown metric '" + std::string(text) + "' (expected dot, cosine or l2)");
}

Isa parse_isa(std::string_view text) {
  const std::string s = ascii_lower(text);
  if (s == "scalar") return Isa::Scalar;
  if (s == "avx2") return Isa::Avx2;
  if (s == "avx512") return Isa::Avx512;
  throw Error(ErrorCode::InvalidArgument,
              "unknown ISA '" + std::string(text) + "' (expected scalar, avx2 or avx512)");
}

std::string_view to_string(StorageType type) noexcept {
  switch (type) {
    case StorageType::F32:
      return "f32";
    case StorageType::F16:
      return "f16";
    case StorageType::Bf16:
      return "bf16";
    case StorageType::I8:
      return "i8";
  }
  return "?";
}

std::string_view to_string(ScoreMode mode) noexcept {
  return mode == ScoreMode::Exact ? "exact" : "fast";
}

StorageType parse_storage_type(std::string_view text) {
  const std::string s = ascii_lower(text);
  if (s == "f32") return StorageType::F32;
  if (s == "f16" || s == "fp16") return StorageType::F16;
  if (s == "bf16") return StorageType::Bf16;
  if (s == "i8" || s == "int8") return StorageType::I8;
  throw Error(ErrorCode::InvalidArgument,
              "unknown storage type '" + std::string(text) + "' (expected f32, f16, bf16 or i8)");
}

ScoreMode parse_score_mode(std::string_view text) {
  const std::string s = ascii_lower(text);
  if (s == "exact") return ScoreMode::Exact;
  if (s == "fast") return ScoreMode::Fast;
  throw Error(ErrorCode::InvalidArgument,
              "unknown score mode '" + std::string(text) + "' (expected exact or fast)");
}

std::size_t element_bytes(StorageType type) noexcept {
  switch (type) {
    case StorageType::F32:
      return 4;
    case StorageType::F16:
    case StorageType::Bf16:
      return 2;
    case StorageType::I8:
      return 1;
  }
  return 4;
}

}  // namespace hetcache
