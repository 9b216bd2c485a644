#include "key_file.hpp"

#include <hetcache/error.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <unordered_map>

#include "file_names.hpp"

namespace hetcache::cli {
namespace {

bool next_key(std::ifstream& in, std::string& key) {
  if (!std::getline(in, key)) return false;
  if (!key.empty() && key.back() == '\r') key.pop_back();
  return true;
}

std::string shown(const std::string& key) {
  constexpr std::size_t kShown = 60;
  return "'" + key.substr(0, kShown) + (key.size() > kShown ? "...'" : "'");
}

}  // namespace

KeyReader::KeyReader(const std::string& keys_path, const std::string& input_path, std::size_t rows)
    : path_(keys_path) {
  if (keys_path.empty()) {
    // The file's name and the row number, so re-running the same file resumes.
    stem_ = std::filesystem::path(input_path).stem().string();
    return;
  }
  check_keys(input_path, rows);
  in_.clear();
  in_.seekg(0);
}

// One pass hashes every key (8 bytes each) and counts the lines; equal hashes are then confirmed
// by a second pass over just those keys, so a hash collision is never reported as a duplicate.
void KeyReader::check_keys(const std::string& input_path, std::size_t rows) {
  in_.open(path_);
  if (!in_) file_error(path_, std::string("cannot open: ") + std::strerror(errno));
  std::vector<std::size_t> hashes;
  std::size_t lines = 0;
  const std::hash<std::string> hash;
  for (std::string key; next_key(in_, key);) {
    ++lines;
    if (key.empty())
      file_error(path_, "line " + std::to_string(lines) + " is empty (keys cannot be)");
    if (hashes.size() <= rows) hashes.push_back(hash(key));
  }
  if (lines != rows)
    file_error(path_, "has " + std::to_string(lines) + " keys, " + input_path + " has " +
                          std::to_string(rows) + " rows");
  std::sort(hashes.begin(), hashes.end());
  std::vector<std::size_t> repeated;
  for (std::size_t i = 1; i < hashes.size(); ++i)
    if (hashes[i] == hashes[i - 1] && (repeated.empty() || repeated.back() != hashes[i]))
      repeated.push_back(hashes[i]);
  hashes = {};
  if (repeated.empty()) return;
  in_.clear();
  in_.seekg(0);
  std::unordered_map<std::string, std::size_t> first_line;  // only keys with a repeated hash
  std::size_t line = 0;
  for (std::string key; next_key(in_, key);) {
    ++line;
    if (!std::binary_search(repeated.begin(), repeated.end(), hash(key))) continue;
    const auto [at, fresh] = first_line.emplace(key, line);
    if (!fresh)
      file_error(path_, "line " + std::to_string(line) + " repeats the key " + shown(key) +
                            " of line " + std::to_string(at->second) +
                            " (each row needs its own key)");
  }
}

void KeyReader::next(std::size_t n, std::vector<std::string>& out) {
  out.resize(n);
  for (auto& key : out) {
    if (in_.is_open()) {
      if (!next_key(in_, key)) file_error(path_, "read failed (file changed while reading?)");
    } else {
      key = stem_ + ":" + std::to_string(row_);
    }
    ++row_;
  }
}

}  // namespace hetcache::cli
