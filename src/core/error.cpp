#include <hetcache/error.hpp>

namespace hetcache {

const char* to_string(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::InvalidArgument:
      return "InvalidArgument";
    case ErrorCode::DimensionMismatch:
      return "DimensionMismatch";
    case ErrorCode::Unsupported:
      return "Unsupported";
    case ErrorCode::Corruption:
      return "Corruption";
    case ErrorCode::StoreUnavailable:
      return "StoreUnavailable";
    case ErrorCode::GpuError:
      return "GpuError";
    case ErrorCode::Conflict:
      return "Conflict";
    case ErrorCode::Internal:
      return "Internal";
  }
  return "Unknown";
}

Error::Error(ErrorCode code, const std::string& message)
    : std::runtime_error(std::string(to_string(code)) + ": " + message), code_(code) {}

}  // namespace hetcache
