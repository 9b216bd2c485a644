// Any bytes as a .npy, .fvecs or CSV file (the first byte picks the format): the reader either
// reads every row it announced or throws hetcache::Error -- never crashes, hangs or over-reads.
#include <hetcache/error.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <sstream>

#include "vector_file.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  using hetcache::cli::VectorFormat;
  const VectorFormat format = data[0] % 3 == 0   ? VectorFormat::Npy
                              : data[0] % 3 == 1 ? VectorFormat::Fvecs
                                                 : VectorFormat::Csv;
  const std::string bytes(reinterpret_cast<const char*>(data + 1), size - 1);
  try {
    hetcache::cli::VectorReader reader("input", std::make_unique<std::istringstream>(bytes),
                                       bytes.size(), format);
    // A file can only announce as many values as it holds bytes (CSV: 2 bytes per value at least).
    if (reader.rows() * reader.dim() > bytes.size()) std::abort();
    std::vector<float> rows;
    std::size_t total = 0;
    while (const std::size_t n = reader.read(7, rows)) {
      total += n;
      if (rows.size() != total * reader.dim()) std::abort();
    }
    if (total != reader.rows()) std::abort();
  } catch (const hetcache::Error&) {
  }
  return 0;
}
