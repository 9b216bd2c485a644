#include "options.hpp"

#include <hetcache/error.hpp>

namespace hetcache::cli {
namespace {

// Digits without a sign; nullopt when empty, not digits, or over 2^64 - 1.
bool digits(std::string_view text, std::uint64_t& value) {
  if (text.empty()) return false;
  value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return false;
    if (__builtin_mul_overflow(value, 10u, &value) ||
        __builtin_add_overflow(value, static_cast<std::uint64_t>(c - '0'), &value))
      return false;
  }
  return true;
}

}  // namespace

std::uint64_t parse_count(std::string_view option, std::string_view text, std::uint64_t min,
                          std::uint64_t max) {
  const auto fail = [&]() -> std::uint64_t {
    throw Error(ErrorCode::InvalidArgument, std::string(option) + " must be a whole number from " +
                                                std::to_string(min) + " to " + std::to_string(max) +
                                                ", got '" + std::string(text.substr(0, 40)) + "'");
  };
  std::uint64_t value = 0;
  const auto e = text.find_first_of("eE");
  if (e == std::string_view::npos) {
    if (!digits(text, value)) return fail();
  } else {
    std::uint64_t exponent = 0;
    if (!digits(text.substr(0, e), value) || !digits(text.substr(e + 1), exponent)) return fail();
    for (std::uint64_t i = 0; i < exponent && value != 0; ++i)
      if (__builtin_mul_overflow(value, 10u, &value)) return fail();
  }
  if (value < min || value > max) return fail();
  return value;
}

CLI::Option* add_count(CLI::App* app, const std::string& name, std::uint64_t& target,
                       std::uint64_t min, std::uint64_t max, const std::string& description) {
  return app
      ->add_option_function<std::string>(
          name,
          [&target, name, min, max](const std::string& text) {
            target = parse_count(name, text, min, max);
          },
          description)
      ->type_name("N");
}

CLI::Option* add_counts(CLI::App* app, const std::string& name, std::vector<std::uint64_t>& target,
                        std::uint64_t min, std::uint64_t max, const std::string& description) {
  return app
      ->add_option_function<std::vector<std::string>>(
          name,
          [&target, name, min, max](const std::vector<std::string>& texts) {
            target.clear();
            for (const auto& text : texts) target.push_back(parse_count(name, text, min, max));
          },
          description)
      ->delimiter(',')
      ->type_name("N,N,..");
}

}  // namespace hetcache::cli
