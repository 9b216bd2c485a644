// Numbers from the command line, checked before any work: whole numbers in a stated range, so a
// negative, overflowing or absurd value is one clear error and never a size.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace hetcache::cli {

// text as a whole number in [min, max]: decimal digits, optionally with an exponent ("1e6").
// Throws hetcache::Error(InvalidArgument): "--k must be a whole number from 1 to 100000, got '-3'".
std::uint64_t parse_count(std::string_view option, std::string_view text, std::uint64_t min,
                          std::uint64_t max);

// An option holding one whole number in [min, max], written into `target` when given. The
// description should state the default and the unit.
CLI::Option* add_count(CLI::App* app, const std::string& name, std::uint64_t& target,
                       std::uint64_t min, std::uint64_t max, const std::string& description);
// A comma-separated list of such numbers (replaces target's defaults when given).
CLI::Option* add_counts(CLI::App* app, const std::string& name, std::vector<std::uint64_t>& target,
                        std::uint64_t min, std::uint64_t max, const std::string& description);

}  // namespace hetcache::cli
