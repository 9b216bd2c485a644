// Reading embeddings from .npy (float16 / float32 / float64, either byte order, 2-D or one 1-D
// vector, C order), .fvecs and CSV files, in batches. Everything a file claims is checked against
// what it holds before the first row is handed out, every row is checked as it is read (finite
// values, a norm whose squared distances stay finite in float32), and every problem is one error
// naming the file and the row.
#pragma once

#include <cstddef>
#include <cstdint>
#include <istream>
#include <memory>
#include <string>
#include <vector>

namespace hetcache::cli {

enum class VectorFormat { Npy, Fvecs, Csv };

// From the file name's extension (case-insensitive): .npy, .fvecs, .csv or .txt; throws
// hetcache::Error(InvalidArgument) for anything else.
VectorFormat vector_format_of(const std::string& path);

// The widest vector accepted (4 MiB of float32).
inline constexpr std::size_t kMaxDim = std::size_t{1} << 20;
// A row's squared norm may not exceed FLT_MAX / 4, so that squared L2 distances (at most
// 2|a|^2 + 2|b|^2) and dot products of two such rows stay finite in float32.
inline constexpr double kMaxSquaredNorm = 3.4028234663852886e38 / 4;

class VectorReader {
 public:
  // Opens the file and checks its header and size; throws hetcache::Error(InvalidArgument) naming
  // the file and what is wrong.
  explicit VectorReader(const std::string& path);
  // The same over a stream of `size` bytes (name is used in messages).
  VectorReader(std::string name, std::unique_ptr<std::istream> in, std::uint64_t size,
               VectorFormat format);
  ~VectorReader();
  VectorReader(const VectorReader&) = delete;
  VectorReader& operator=(const VectorReader&) = delete;

  std::size_t dim() const noexcept { return dim_; }
  // Rows in the file (CSV: counted when opened); at least 1.
  std::size_t rows() const noexcept { return rows_; }
  std::string dtype() const;  // "float32", "float16", "float64" (narrowed to float32 on read)
  // Appends up to max_rows rows (as float32) to out; returns how many (0 at the end). Throws
  // Error(InvalidArgument) naming the row for a non-finite value, a float64 value outside float32's
  // range, or a norm over sqrt(kMaxSquaredNorm).
  std::size_t read(std::size_t max_rows, std::vector<float>& out);

 private:
  std::string path_;
  VectorFormat format_;
  std::unique_ptr<std::istream> in_;
  std::size_t dim_ = 0, rows_ = 0, next_ = 0;
  std::size_t item_bytes_ = 4;  // .npy: 2, 4 or 8
  bool big_endian_ = false;
  std::size_t line_ = 0;  // CSV: lines read so far

  void open(std::uint64_t size);
  void open_npy(std::uint64_t size);
  void open_fvecs(std::uint64_t size);
  void open_csv();
  void read_npy(std::size_t n, float* dst);
  // CSV: appends the next non-empty line's values to out (their count in fields); false at the
  // end of the file.
  bool next_csv_row(std::vector<float>& out, std::size_t& fields);
  // Throws unless every value of the row is finite and its norm is in range; the message names
  // it as unit + number ("row 7", "line 9").
  void check_row(const float* row, const char* unit, std::size_t number) const;
};

}  // namespace hetcache::cli
