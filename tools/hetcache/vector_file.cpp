#include "vector_file.hpp"

#include <hetcache/error.hpp>

#include <charconv>
#include <cstring>
#include <filesystem>

namespace hetcache::cli {
namespace {

[[noreturn]] void bad(const std::string& path, const std::string& what) {
  throw Error(ErrorCode::InvalidArgument, path + ": " + what);
}

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
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

VectorFormat format_of(const std::string& path) {
  const std::string ext = std::filesystem::path(path).extension().string();
  if (ext == ".npy") return VectorFormat::Npy;
  if (ext == ".fvecs") return VectorFormat::Fvecs;
  if (ext == ".csv" || ext == ".txt") return VectorFormat::Csv;
  bad(path, "unknown file type '" + ext + "' (expected .npy, .fvecs or .csv)");
}

// The value of 'name': in a .npy header dict ("{'descr': '<f4', 'fortran_order': False, ...}").
std::string header_field(const std::string& header, const std::string& name) {
  const auto at = header.find("'" + name + "'");
  if (at == std::string::npos) return {};
  auto colon = header.find(':', at);
  if (colon == std::string::npos) return {};
  ++colon;
  while (colon < header.size() && header[colon] == ' ') ++colon;
  std::size_t end = colon;
  if (header[colon] == '(') {
    end = header.find(')', colon);
    return end == std::string::npos ? std::string() : header.substr(colon, end - colon + 1);
  }
  if (header[colon] == '\'') {
    end = header.find('\'', colon + 1);
    return end == std::string::npos ? std::string() : header.substr(colon + 1, end - colon - 1);
  }
  while (end < header.size() && header[end] != ',' && header[end] != '}') ++end;
  return header.substr(colon, end - colon);
}

// Parses one CSV line of floats; throws naming the line.
void parse_csv_line(const std::string& path, std::size_t line_no, const std::string& line,
                    std::vector<float>& out, std::size_t& fields) {
  fields = 0;
  const char* p = line.data();
  const char* end = p + line.size();
  while (p <= end) {
    while (p < end && (*p == ' ' || *p == '\t')) ++p;
    float v = 0;
    const auto [next, ec] = std::from_chars(p, end, v);
    if (ec != std::errc()) {
      bad(path, "line " + std::to_string(line_no) + ": not a number near '" +
                    std::string(p, std::min<std::size_t>(20, static_cast<std::size_t>(end - p))) +
                    "'");
    }
    out.push_back(v);
    ++fields;
    p = next;
    while (p < end && (*p == ' ' || *p == '\t')) ++p;
    if (p == end) break;
    if (*p != ',') bad(path, "line " + std::to_string(line_no) + ": expected ',' between values");
    ++p;
  }
}

}  // namespace

VectorReader::VectorReader(const std::string& path) : path_(path), format_(format_of(path)) {
  in_.open(path, std::ios::binary);
  if (!in_) bad(path, std::string("cannot open: ") + std::strerror(errno));
  const auto size = static_cast<std::uint64_t>(std::filesystem::file_size(path));
  switch (format_) {
    case VectorFormat::Npy: {
      char magic[8];
      if (!in_.read(magic, 8) || std::memcmp(magic, "\x93NUMPY", 6) != 0)
        bad(path, "not a .npy file (bad magic)");
      std::uint32_t header_len = 0;
      if (magic[6] == 1) {
        unsigned char b[2];
        if (!in_.read(reinterpret_cast<char*>(b), 2)) bad(path, "truncated .npy header");
        header_len = b[0] | (b[1] << 8u);
      } else {
        unsigned char b[4];
        if (!in_.read(reinterpret_cast<char*>(b), 4)) bad(path, "truncated .npy header");
        header_len = b[0] | (b[1] << 8u) | (b[2] << 16u) | (std::uint32_t(b[3]) << 24u);
      }
      std::string header(header_len, '\0');
      if (!in_.read(header.data(), header_len)) bad(path, "truncated .npy header");
      const std::string descr = header_field(header, "descr");
      if (descr == "<f4" || descr == "=f4") {
        half_ = false;
      } else if (descr == "<f2" || descr == "=f2") {
        half_ = true;
      } else {
        bad(path,
            "dtype '" + descr + "' is not supported (expected float32 '<f4' or float16 '<f2')");
      }
      if (header_field(header, "fortran_order") != "False")
        bad(path, "Fortran-order arrays are not supported (save with np.ascontiguousarray)");
      const std::string shape = header_field(header, "shape");
      std::size_t a = 0, b = 0;
      if (std::sscanf(shape.c_str(), "(%zu, %zu)", &a, &b) != 2)
        bad(path, "shape " + shape + " is not 2-D (rows, dim)");
      rows_ = a;
      dim_ = b;
      const std::uint64_t data_bytes = std::uint64_t(rows_) * dim_ * (half_ ? 2 : 4);
      const std::uint64_t offset = static_cast<std::uint64_t>(in_.tellg());
      if (size - offset < data_bytes)
        bad(path, "truncated: the header promises " + std::to_string(rows_) + " x " +
                      std::to_string(dim_) + " values (" + std::to_string(data_bytes) +
                      " bytes), the file holds " + std::to_string(size - offset));
      break;
    }
    case VectorFormat::Fvecs: {
      std::int32_t d = 0;
      if (!in_.read(reinterpret_cast<char*>(&d), 4) || d <= 0 || d > (1 << 20))
        bad(path, "not an .fvecs file (first dimension field invalid)");
      dim_ = static_cast<std::size_t>(d);
      const std::uint64_t record = 4 + 4 * std::uint64_t(dim_);
      if (size % record != 0)
        bad(path, "truncated: " + std::to_string(size) + " bytes is not a whole number of " +
                      std::to_string(record) + "-byte records");
      rows_ = static_cast<std::size_t>(size / record);
      in_.seekg(0);
      break;
    }
    case VectorFormat::Csv: {
      std::vector<float> row;
      std::size_t fields = 0;
      while (next_csv_row(row, fields)) {
        row.clear();
        if (dim_ == 0) dim_ = fields;
        if (fields != dim_)
          bad(path, "line " + std::to_string(line_) + " has " + std::to_string(fields) +
                        " values, the first row has " + std::to_string(dim_));
        ++rows_;
      }
      if (rows_ == 0) bad(path, "no rows");
      in_.clear();
      in_.seekg(0);
      line_ = 0;
      break;
    }
  }
  if (dim_ == 0) bad(path, "dimension 0");
}

VectorReader::~VectorReader() = default;

std::string VectorReader::dtype() const { return half_ ? "float16" : "float32"; }

std::size_t VectorReader::read(std::size_t max_rows, std::vector<float>& out) {
  const std::size_t n = std::min(max_rows, rows_ - next_);
  if (n == 0) return 0;
  const std::size_t base = out.size();
  out.resize(base + n * dim_);
  float* dst = out.data() + base;
  switch (format_) {
    case VectorFormat::Npy:
      if (half_) {
        std::vector<std::uint16_t> h(n * dim_);
        if (!in_.read(reinterpret_cast<char*>(h.data()), std::streamsize(h.size() * 2)))
          bad(path_, "read failed (file changed while reading?)");
        for (std::size_t i = 0; i < h.size(); ++i) dst[i] = half_to_float(h[i]);
      } else if (!in_.read(reinterpret_cast<char*>(dst), std::streamsize(n * dim_ * 4))) {
        bad(path_, "read failed (file changed while reading?)");
      }
      break;
    case VectorFormat::Fvecs:
      for (std::size_t r = 0; r < n; ++r) {
        std::int32_t d = 0;
        if (!in_.read(reinterpret_cast<char*>(&d), 4) ||
            !in_.read(reinterpret_cast<char*>(dst + r * dim_), std::streamsize(dim_ * 4)))
          bad(path_, "read failed (file changed while reading?)");
        if (static_cast<std::size_t>(d) != dim_)
          bad(path_, "record " + std::to_string(next_ + r) + " has dimension " + std::to_string(d) +
                         ", the first has " + std::to_string(dim_));
      }
      break;
    case VectorFormat::Csv: {
      out.resize(base);
      std::size_t got = 0, fields = 0;
      while (got < n && next_csv_row(out, fields)) ++got;
      if (got != n) bad(path_, "read failed (file changed while reading?)");
      break;
    }
  }
  next_ += n;
  return n;
}

bool VectorReader::next_csv_row(std::vector<float>& out, std::size_t& fields) {
  std::string line;
  while (std::getline(in_, line)) {
    ++line_;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    parse_csv_line(path_, line_, line, out, fields);
    return true;
  }
  return false;
}

KeyReader::KeyReader(const std::string& keys_path, const std::string& input_path,
                     std::size_t rows) {
  if (keys_path.empty()) {
    // The file's name and the row number, so re-running the same file resumes.
    stem_ = std::filesystem::path(input_path).stem().string();
    return;
  }
  in_.open(keys_path);
  if (!in_) bad(keys_path, std::string("cannot open: ") + std::strerror(errno));
  std::size_t lines = 0;
  for (std::string line; std::getline(in_, line);) ++lines;
  if (lines != rows)
    bad(keys_path, "has " + std::to_string(lines) + " keys, " + input_path + " has " +
                       std::to_string(rows) + " rows");
  in_.clear();
  in_.seekg(0);
}

void KeyReader::next(std::size_t n, std::vector<std::string>& out) {
  out.resize(n);
  for (auto& key : out) {
    if (in_.is_open()) {
      if (!std::getline(in_, key))
        throw Error(ErrorCode::InvalidArgument, "keys file: read failed");
      if (!key.empty() && key.back() == '\r') key.pop_back();
    } else {
      key = stem_ + ":" + std::to_string(row_);
    }
    ++row_;
  }
}

}  // namespace hetcache::cli
