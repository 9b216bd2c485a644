// The header of a .npy file: the Python dict literal after the magic and length, parsed whole as
// NumPy parses it (every key, any rank, no duplicate keys), so no array is read with a shape it
// does not have.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hetcache::cli {

// NumPy's own cap on a header's length (numpy.lib.format: max_header_size, 10000 bytes).
inline constexpr std::uint32_t kMaxNpyHeaderBytes = 10000;

struct NpyHeader {
  std::size_t item_bytes = 0;  // 2, 4 or 8: float16, float32, float64
  bool big_endian = false;
  bool fortran_order = false;
  std::vector<std::uint64_t> shape;  // any rank, as written
  std::string descr;                 // as written, for messages
};

// Parses "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }" (NumPy's padding of spaces
// and a newline after it allowed). Throws std::invalid_argument saying what is wrong: not a dict,
// a key missing, repeated or unknown, a dtype other than float16/32/64, a malformed shape.
NpyHeader parse_npy_header(std::string_view text);

// "(100, 10, 64)" for messages.
std::string shape_string(const std::vector<std::uint64_t>& shape);

}  // namespace hetcache::cli
