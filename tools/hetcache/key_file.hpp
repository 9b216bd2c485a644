// The keys an ingest stores its rows under: a keys file, checked whole before anything is
// written, or keys made from the input's name.
#pragma once

#include <cstddef>
#include <fstream>
#include <string>
#include <vector>

namespace hetcache::cli {

// The keys of an input's rows, batch by batch, so an ingest of 100M rows does not hold 100M keys:
// one per line of a keys file (without a trailing '\r'), else "<input file stem>:<row>".
class KeyReader {
 public:
  // keys_path empty: the default keys. A keys file is checked once here: one line per row, no
  // empty line, no key twice (Error(InvalidArgument) naming the lines otherwise; 8 bytes of
  // memory per key while checking). It is then read as the rows are.
  KeyReader(const std::string& keys_path, const std::string& input_path, std::size_t rows);
  // Replaces out with the next n keys.
  void next(std::size_t n, std::vector<std::string>& out);

 private:
  std::string stem_;
  std::string path_;
  std::ifstream in_;
  std::size_t row_ = 0;

  void check_keys(const std::string& input_path, std::size_t rows);
};

}  // namespace hetcache::cli
