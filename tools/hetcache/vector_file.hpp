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

// Lines of a text file (keys), without trailing '\r'.
std::vector<std::string> read_lines(const std::string& path);

}  // namespace hetcache::cli
