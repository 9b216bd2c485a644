// Private: ASCII lower-casing for parsing option names (metrics, ISAs, precisions, strategies).
#pragma once

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

namespace hetcache {

inline std::string ascii_lower(std::string_view text) {
  std::string s(text);
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace hetcache
