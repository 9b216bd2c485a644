// Reading embeddings from .npy (float32 / float16, 2-D, C order), .fvecs and CSV files, in
// batches, with every malformed or truncated file reported as one clear error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

namespace hetcache::cli {

enum class VectorFormat { Npy, Fvecs, Csv };

class VectorReader {
 public:
  // Opens and checks the header (the whole file size for .npy and .fvecs); throws
  // hetcache::Error(InvalidArgument) naming the file and what is wrong.
  explicit VectorReader(const std::string& path);
  ~VectorReader();
  VectorReader(const VectorReader&) = delete;
  VectorReader& operator=(const VectorReader&) = delete;

  std::size_t dim() const noexcept { return dim_; }
  // Rows in the file (CSV: counted when opened).
  std::size_t rows() const noexcept { return rows_; }
  std::string dtype() const;  // "float32", "float16"
  // Appends up to max_rows rows (as float32) to out; returns how many (0 at the end).
  std::size_t read(std::size_t max_rows, std::vector<float>& out);

 private:
  std::string path_;
  VectorFormat format_;
  std::ifstream in_;
  std::size_t dim_ = 0, rows_ = 0, next_ = 0;
  bool half_ = false;
  std::size_t line_ = 0;  // CSV: lines read so far

  // CSV: appends the next non-empty line's values to out (their count in fields); false at the
  // end of the file.
  bool next_csv_row(std::vector<float>& out, std::size_t& fields);
};

// The keys of an input's rows, batch by batch, so an ingest of 100M rows does not hold 100M keys:
// one per line of a keys file (without a trailing '\r'), else "<input file stem>:<row>".
class KeyReader {
 public:
  // keys_path empty: the default keys. A keys file is counted once here (it must have one line
  // per row: Error(InvalidArgument) otherwise) and then read as the rows are.
  KeyReader(const std::string& keys_path, const std::string& input_path, std::size_t rows);
  // Replaces out with the next n keys.
  void next(std::size_t n, std::vector<std::string>& out);

 private:
  std::string stem_;
  std::ifstream in_;
  std::size_t row_ = 0;
};

}  // namespace hetcache::cli
