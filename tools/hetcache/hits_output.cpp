#include "hits_output.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>

namespace hetcache::cli {

std::string json_escaped(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(ch);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out.push_back(ch);
    }
  }
  return out;
}

void write_hits_jsonl(std::ostream& out, const QueryHits& hits) {
  out.precision(std::numeric_limits<float>::max_digits10);  // scores read back exactly
  for (std::size_t i = 0; i < hits.size(); ++i) {
    out << "{\"query\":" << i << ",\"hits\":[";
    for (std::size_t j = 0; j < hits[i].size(); ++j) {
      out << (j ? "," : "") << "{\"key\":\"" << json_escaped(hits[i][j].key)
          << "\",\"id\":" << hits[i][j].id << ",\"score\":";
      // JSON has no NaN or infinity.
      if (std::isfinite(hits[i][j].score))
        out << hits[i][j].score;
      else
        out << "null";
      out << "}";
    }
    out << "]}\n";
  }
}

void write_hits_npy(std::ostream& out, const QueryHits& hits, std::size_t k) {
  static_assert(std::endian::native == std::endian::little,
                "the .npy writer assumes '<i8' and '<f4'");
  std::size_t width = 1;  // NumPy has no zero-width byte strings
  for (const auto& query : hits)
    for (const KeyHit& f : query) width = std::max(width, f.key.size());
  std::string header = "{'descr': [('key', '|S" + std::to_string(width) +
                       "'), ('row', '<i8'), ('score', '<f4')], 'fortran_order': False, 'shape': (" +
                       std::to_string(hits.size()) + ", " + std::to_string(k) + "), }";
  // Format 1.0: magic (6) + version (2) + header length (2) + header, padded with spaces and a
  // newline to a multiple of 64 bytes.
  header.append((64 - (10 + header.size() + 1) % 64) % 64, ' ');
  header.push_back('\n');
  out.write("\x93NUMPY\x01\x00", 8);
  const char length[2] = {static_cast<char>(header.size() & 0xFF),
                          static_cast<char>(header.size() >> 8)};
  out.write(length, 2);
  out << header;
  std::string record(width + 12, '\0');
  const float missing = std::numeric_limits<float>::quiet_NaN();
  for (const auto& query : hits) {
    for (std::size_t j = 0; j < k; ++j) {
      std::fill(record.begin(), record.end(), '\0');
      const float score = j < query.size() ? query[j].score : missing;
      const std::int64_t row = j < query.size() ? query[j].id : -1;
      if (j < query.size()) std::memcpy(record.data(), query[j].key.data(), query[j].key.size());
      std::memcpy(record.data() + width, &row, 8);
      std::memcpy(record.data() + width + 8, &score, 4);
      out.write(record.data(), static_cast<std::streamsize>(record.size()));
    }
  }
}

}  // namespace hetcache::cli
