// What the command's file readers and writers share: the error that names a file, and a file
// name's extension as the command compares it.
#pragma once

#include <hetcache/error.hpp>

#include <cctype>
#include <filesystem>
#include <string>

namespace hetcache::cli {

// Error(InvalidArgument) "<path>: <what>".
[[noreturn]] inline void file_error(const std::string& path, const std::string& what) {
  throw Error(ErrorCode::InvalidArgument, path + ": " + what);
}

// "hits.NPY" -> ".npy": a path's extension in lower case.
inline std::string lower_extension(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

}  // namespace hetcache::cli
