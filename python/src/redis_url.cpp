#include "redis_url.hpp"

#include <hetcache/error.hpp>

#include <charconv>
#include <string>

namespace hetcache::python {
namespace {

int number_of(std::string_view text, std::string_view url, const char* what, int max) {
  int value = -1;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < 0 || value > max)
    throw Error(ErrorCode::InvalidArgument, "redis = '" + std::string(url) + "': " + what + " '" +
                                                std::string(text) + "' is not 0.." +
                                                std::to_string(max));
  return value;
}

}  // namespace

RedisOptions parse_redis_url(std::string_view url) {
  RedisOptions o;
  std::string_view rest = url;
  constexpr std::string_view kScheme = "redis://";
  if (rest.substr(0, kScheme.size()) == kScheme) rest.remove_prefix(kScheme.size());
  else if (rest.find("://") != std::string_view::npos)
    throw Error(ErrorCode::InvalidArgument,
                "redis = '" + std::string(url) + "': only redis:// URLs (no TLS) are supported");
  if (const auto at = rest.rfind('@'); at != std::string_view::npos) {
    std::string_view auth = rest.substr(0, at);
    if (const auto colon = auth.find(':'); colon != std::string_view::npos) {
      if (colon != 0)
        throw Error(ErrorCode::InvalidArgument,
                    "redis = '" + std::string(url) + "': a user name (Redis ACL) is not supported");
      auth.remove_prefix(1);
    }
    o.password = std::string(auth);
    rest.remove_prefix(at + 1);
  }
  if (const auto slash = rest.find('/'); slash != std::string_view::npos) {
    const std::string_view db = rest.substr(slash + 1);
    if (!db.empty()) o.db = number_of(db, url, "database", 1 << 20);
    rest = rest.substr(0, slash);
  }
  if (const auto colon = rest.rfind(':'); colon != std::string_view::npos) {
    o.port = number_of(rest.substr(colon + 1), url, "port", 65535);
    rest = rest.substr(0, colon);
  }
  if (rest.empty())
    throw Error(ErrorCode::InvalidArgument, "redis = '" + std::string(url) + "': no host");
  o.host = std::string(rest);
  return o;
}

}  // namespace hetcache::python
