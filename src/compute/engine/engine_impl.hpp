// Private to src/compute/engine: the SimilarityEngine's state, shared by its f32 front end
// (similarity_engine.cpp) and its compact-set front end (compact_engine.cpp).
#pragma once

#include <hetcache/error.hpp>
#include <hetcache/similarity.hpp>

#include <memory>

#include "compute/cpu/cpu_tiers.hpp"
#include "compute/cpu/isa.hpp"
#include "compute/gpu/gpu_tier.hpp"
#include "runtime/resources_core.hpp"
#include "scheduler/rules.hpp"
#include "scheduler/work_shapes.hpp"

namespace hetcache {

struct SimilarityEngine::Impl {
  Impl(Isa isa_in, Precision precision, bool quantize, bool amx,
       std::shared_ptr<Resources> resources_in)
      : isa(isa_in),
        quantize_queries(quantize),
        amx_kernels(amx),
        gpu_precision(precision),
        resources(resources_in ? std::move(resources_in) : Resources::shared()),
        core(resources->core()),
        tiers(cpu::kernels_for(isa_in), core.arena, core.cpu_threads) {}

  // Sequential or Cpu for scores / one-query scoring (the GPU tier does top-k search only).
  bool parallel_for(Tier tier) const {
    switch (tier) {
      case Tier::Sequential:
        return false;
      case Tier::Cpu:
        return true;
      case Tier::Fiber:
        throw Error(ErrorCode::Unsupported,
                    "tier fiber runs cache I/O, not similarity compute; use sequential or cpu");
      case Tier::Gpu:
        throw Error(ErrorCode::Unsupported,
                    "tier gpu runs top-k search only; full score matrices and one-query scoring "
                    "run on sequential or cpu");
    }
    throw Error(ErrorCode::InvalidArgument, "unknown tier");
  }

  gpu::GpuTier& available_gpu() const {
    gpu::GpuTier& tier = core.gpu();
    if (!tier.available()) {
      throw Error(ErrorCode::Unsupported, "tier gpu is not available: " + tier.stats().reason);
    }
    return tier;
  }

  // The tier of a call that names none: the fixed rule (scheduler/rules.hpp). The GPU is looked
  // for only when the work is big enough for it.
  Tier place(std::size_t queries, std::size_t candidates, std::size_t dim, bool host_only) const {
    Work work = scheduler::similarity_work(queries, candidates, dim);
    work.host_only = host_only;
    return scheduler::default_rule_tier(work, [this] { return core.available_gpu() != nullptr; });
  }

  Isa isa;
  bool quantize_queries;
  bool amx_kernels;
  Precision gpu_precision;
  std::shared_ptr<Resources> resources;
  detail::ResourcesCore& core;
  cpu::CpuTiers tiers;
};

}  // namespace hetcache
