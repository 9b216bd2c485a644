#include "vector_file.hpp"

#include <hetcache/error.hpp>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <stdexcept>

#include "file_names.hpp"
#include "npy_header.hpp"

namespace hetcache::cli {
namespace {

float half_to_float(std::uint16_t h) {
  const std::uint32_t sign = (h & 0x8000u) << 16;
  std::uint32_t exponent = (h >> 10) & 0x1Fu;
  std::uint32_t mantissa = h & 0x3FFu;
  std::uint32_t bits;
  if (exponent == 0x1F) {
    bits = sign | 0x7F800000u | (mantissa << 13);  // inf / nan
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    bits = sign;
  } else {  // subnormal: normalise
    exponent = 113;
    while ((mantissa & 0x400u) == 0) {
      mantissa <<= 1;
      --exponent;
    }
    bits = sign | (exponent << 23) | ((mantissa & 0x3FFu) << 13);
  }
  return std::bit_cast<float>(bits);
}

std::string shown(double v) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", v);
  return text;
}

// Reverses the bytes of each `width`-byte item in place (big-endian .npy files).
void swap_items(char* data, std::size_t items, std::size_t width) {
  for (std::size_t i = 0; i < items; ++i) std::reverse(data + i * width, data + (i + 1) * width);
}

// Parses one CSV line of floats; throws naming the line.
void parse_csv_line(const std::string& path, std::size_t line_no, const std::string& line,
                    std::vector<float>& out, std::size_t& fields) {
  fields = 0;
  const char* p = line.data();
  const char* end = p + line.size();
  const auto where = [&] { return "line " + std::to_string(line_no) + ": "; };
  while (p <= end) {
    while (p < end && (*p == ' ' || *p == '\t')) ++p;
    float v = 0;
    const auto [next, ec] = std::from_chars(p, end, v);
    const auto near = [&] {
      return std::string(p, std::min<std::size_t>(20, static_cast<std::size_t>(end - p)));
    };
    if (ec == std::errc::result_out_of_range)
      file_error(path, where() + "'" + near() + "' is outside float32's range");
    if (ec != std::errc()) file_error(path, where() + "not a number near '" + near() + "'");
    if (++fields > kMaxDim)
      file_error(path,
                 where() + "more than " + std::to_string(kMaxDim) + " values (the widest vector)");
    out.push_back(v);
    p = next;
    while (p < end && (*p == ' ' || *p == '\t')) ++p;
    if (p == end) break;
    if (*p != ',') file_error(path, where() + "expected ',' between values");
    ++p;
  }
}

}  // namespace

VectorFormat vector_format_of(const std::string& path) {
  const std::string ext = lower_extension(path);
  if (ext == ".npy") return VectorFormat::Npy;
  if (ext == ".fvecs") return VectorFormat::Fvecs;
  if (ext == ".csv" || ext == ".txt") return VectorFormat::Csv;
  file_error(path, "unknown file type '" + ext + "' (expected .npy, .fvecs or .csv)");
}

VectorReader::VectorReader(const std::string& path) : path_(path), format_(vector_format_of(path)) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) file_error(path, "is a directory");
  auto file = std::make_unique<std::ifstream>(path, std::ios::binary);
  if (!*file) file_error(path, std::string("cannot open: ") + std::strerror(errno));
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) file_error(path, "cannot read its size: " + ec.message());
  in_ = std::move(file);
  open(size);
}

VectorReader::VectorReader(std::string name, std::unique_ptr<std::istream> in, std::uint64_t size,
                           VectorFormat format)
    : path_(std::move(name)), format_(format), in_(std::move(in)) {
  open(size);
}

void VectorReader::open(std::uint64_t size) {
  switch (format_) {
    case VectorFormat::Npy:
      open_npy(size);
      break;
    case VectorFormat::Fvecs:
      open_fvecs(size);
      break;
    case VectorFormat::Csv:
      open_csv();
      break;
  }
  if (dim_ == 0) file_error(path_, "dimension 0");
  if (dim_ > kMaxDim)
    file_error(path_, "dimension " + std::to_string(dim_) + " is over the limit of " +
                          std::to_string(kMaxDim));
  if (rows_ == 0) file_error(path_, "holds no vectors");
}

void VectorReader::open_npy(std::uint64_t size) {
  char magic[8];
  if (!in_->read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0)
    file_error(path_, "not a .npy file (bad magic)");
  const int major = static_cast<unsigned char>(magic[6]);
  std::uint32_t header_len = 0;
  unsigned char b[4] = {0, 0, 0, 0};
  if (major == 1) {
    if (!in_->read(reinterpret_cast<char*>(b), 2)) file_error(path_, "truncated .npy header");
  } else if (major == 2 || major == 3) {
    if (!in_->read(reinterpret_cast<char*>(b), 4)) file_error(path_, "truncated .npy header");
  } else {
    file_error(path_,
               ".npy format version " + std::to_string(major) + " is not supported (1, 2 or 3)");
  }
  header_len = b[0] | (b[1] << 8u) | (b[2] << 16u) | (std::uint32_t(b[3]) << 24u);
  const std::uint64_t prefix = major == 1 ? 10 : 12;
  if (header_len > kMaxNpyHeaderBytes)
    file_error(path_, "the .npy header claims " + std::to_string(header_len) +
                          " bytes, more than NumPy's limit of " +
                          std::to_string(kMaxNpyHeaderBytes));
  if (size < prefix + header_len) file_error(path_, "truncated .npy header");
  std::string text(header_len, '\0');
  if (!in_->read(text.data(), header_len)) file_error(path_, "truncated .npy header");
  NpyHeader h;
  try {
    h = parse_npy_header(text);
  } catch (const std::invalid_argument& e) {
    file_error(path_, e.what());
  }
  item_bytes_ = h.item_bytes;
  big_endian_ = h.big_endian;
  const std::string shape = shape_string(h.shape);
  if (h.shape.size() == 2) {
    rows_ = h.shape[0];
    dim_ = h.shape[1];
  } else if (h.shape.size() == 1) {
    rows_ = 1;  // one vector
    dim_ = h.shape[0];
  } else {
    file_error(path_, "shape " + shape + " has " + std::to_string(h.shape.size()) +
                          " dimensions; expected (rows, dim), or (dim,) for one vector" +
                          (h.shape.size() > 2 ? " (reshape with a.reshape(-1, " +
                                                    std::to_string(h.shape.back()) + "))"
                                              : ""));
  }
  if (h.fortran_order && h.shape.size() == 2 && rows_ > 1 && dim_ > 1)
    file_error(path_, "Fortran-order arrays are not supported (save with np.ascontiguousarray)");
  if (dim_ > kMaxDim)
    file_error(path_, "shape " + shape + ": dimension " + std::to_string(dim_) +
                          " is over the limit of " + std::to_string(kMaxDim));
  std::uint64_t data_bytes = 0;
  if (__builtin_mul_overflow(std::uint64_t(rows_), std::uint64_t(dim_), &data_bytes) ||
      __builtin_mul_overflow(data_bytes, std::uint64_t(item_bytes_), &data_bytes) ||
      size - prefix - header_len < data_bytes)
    file_error(path_, "truncated: the header promises shape " + shape + " of " + h.descr +
                          ", the file holds " + std::to_string(size - prefix - header_len) +
                          " bytes of data");
}

void VectorReader::open_fvecs(std::uint64_t size) {
  if (size == 0) file_error(path_, "holds no vectors");
  std::int32_t d = 0;
  if (!in_->read(reinterpret_cast<char*>(&d), 4) || d <= 0 || std::size_t(d) > kMaxDim)
    file_error(path_, "not an .fvecs file (first dimension field " + std::to_string(d) + ")");
  dim_ = static_cast<std::size_t>(d);
  const std::uint64_t record = 4 + 4 * std::uint64_t(dim_);
  if (size % record != 0)
    file_error(path_, "truncated: " + std::to_string(size) + " bytes is not a whole number of " +
                          std::to_string(record) + "-byte records");
  rows_ = static_cast<std::size_t>(size / record);
  in_->seekg(0);
}

void VectorReader::open_csv() {
  std::vector<float> row;
  std::size_t fields = 0;
  while (next_csv_row(row, fields)) {
    row.clear();
    if (dim_ == 0) dim_ = fields;
    if (fields != dim_)
      file_error(path_, "line " + std::to_string(line_) + " has " + std::to_string(fields) +
                            " values, the first row has " + std::to_string(dim_));
    ++rows_;
  }
  in_->clear();
  in_->seekg(0);
  line_ = 0;
}

VectorReader::~VectorReader() = default;

std::string VectorReader::dtype() const {
  return item_bytes_ == 2 ? "float16" : item_bytes_ == 8 ? "float64" : "float32";
}

void VectorReader::check_row(const float* row, const char* unit, std::size_t number) const {
  const auto where = [&] { return std::string(unit) + " " + std::to_string(number); };
  double squared = 0;
  for (std::size_t c = 0; c < dim_; ++c) {
    if (!std::isfinite(row[c]))
      file_error(path_, where() + ", column " + std::to_string(c) + " is " + shown(row[c]) +
                            " (vectors must be finite)");
    squared += double(row[c]) * double(row[c]);
  }
  if (squared > kMaxSquaredNorm)
    file_error(path_, where() + " has norm " + shown(std::sqrt(squared)) + ", over the limit of " +
                          shown(std::sqrt(kMaxSquaredNorm)) +
                          " (its squared distances would overflow float32)");
}

void VectorReader::read_npy(std::size_t n, float* dst) {
  const std::size_t values = n * dim_;
  const auto fill = [&](void* buffer, std::size_t bytes) {
    if (!in_->read(static_cast<char*>(buffer), std::streamsize(bytes)))
      file_error(path_, "read failed (file changed while reading?)");
    if (big_endian_) swap_items(static_cast<char*>(buffer), values, item_bytes_);
  };
  if (item_bytes_ == 4) {
    fill(dst, values * 4);
  } else if (item_bytes_ == 2) {
    std::vector<std::uint16_t> h(values);
    fill(h.data(), values * 2);
    for (std::size_t i = 0; i < values; ++i) dst[i] = half_to_float(h[i]);
  } else {
    std::vector<double> d(values);
    fill(d.data(), values * 8);
    for (std::size_t i = 0; i < values; ++i) {
      if (std::isfinite(d[i]) && std::fabs(d[i]) > double(std::numeric_limits<float>::max()))
        file_error(path_, "row " + std::to_string(next_ + i / dim_) + ", column " +
                              std::to_string(i % dim_) + ": " + shown(d[i]) +
                              " is outside float32's range");
      dst[i] = static_cast<float>(d[i]);
    }
  }
}

std::size_t VectorReader::read(std::size_t max_rows, std::vector<float>& out) {
  const std::size_t n = std::min(max_rows, rows_ - next_);
  if (n == 0) return 0;
  const std::size_t base = out.size();
  out.resize(base + n * dim_);
  float* dst = out.data() + base;
  switch (format_) {
    case VectorFormat::Npy:
      read_npy(n, dst);
      break;
    case VectorFormat::Fvecs:
      for (std::size_t r = 0; r < n; ++r) {
        std::int32_t d = 0;
        if (!in_->read(reinterpret_cast<char*>(&d), 4) ||
            !in_->read(reinterpret_cast<char*>(dst + r * dim_), std::streamsize(dim_ * 4)))
          file_error(path_, "read failed (file changed while reading?)");
        if (d < 0 || static_cast<std::size_t>(d) != dim_)
          file_error(path_, "record " + std::to_string(next_ + r) + " has dimension " +
                                std::to_string(d) + ", the first has " + std::to_string(dim_));
      }
      break;
    case VectorFormat::Csv: {
      out.resize(base);
      std::size_t got = 0, fields = 0;
      while (got < n && next_csv_row(out, fields)) {
        if (fields != dim_)
          file_error(path_, "line " + std::to_string(line_) + " changed while reading");
        check_row(out.data() + base + got * dim_, "line", line_);
        ++got;
      }
      if (got != n) file_error(path_, "read failed (file changed while reading?)");
      next_ += n;
      return n;
    }
  }
  for (std::size_t r = 0; r < n; ++r) check_row(dst + r * dim_, "row", next_ + r);
  next_ += n;
  return n;
}

bool VectorReader::next_csv_row(std::vector<float>& out, std::size_t& fields) {
  std::string line;
  while (std::getline(*in_, line)) {
    ++line_;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    parse_csv_line(path_, line_, line, out, fields);
    return true;
  }
  return false;
}

}  // namespace hetcache::cli
