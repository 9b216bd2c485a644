#pragma once
// hetcache errors: every failure at the API boundary is a hetcache::Error with a code.

#include <stdexcept>
#include <string>

namespace hetcache {

enum class ErrorCode {
  InvalidArgument,    // a value is out of range or malformed (the message names it)
  DimensionMismatch,  // two inputs disagree on the vector dimension
  Unsupported,        // asked for something this build or CPU cannot do (e.g. a forced ISA)
  Corruption,         // stored data failed its checks
  StoreUnavailable,   // a durable store cannot be reached or opened
  GpuError,           // a CUDA / cuBLAS call failed
  Conflict,           // a key already holds a different vector (ingest_batch, OnConflict::Error)
  Internal,           // a bug in hetcache; please report it
};

// Human-readable name of a code, e.g. "InvalidArgument".
const char* to_string(ErrorCode code) noexcept;

class Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message);
  ErrorCode code() const noexcept { return code_; }

 private:
  ErrorCode code_;
};

}  // namespace hetcache
