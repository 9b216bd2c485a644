#!/usr/bin/env bash
# Lists the public API (functions, struct fields, enum values of include/hetcache/*.hpp, outside
# private: sections and namespace detail) and the
# command's options that no test mentions by name. Prints nothing and exits 0 when every one is
# mentioned; otherwise prints them and exits 1. A mention is not proof of a good test, but an
# unmentioned name is certainly untested. Run by ctest (ApiCoverage).
set -euo pipefail
cd "$(dirname "$0")/.."
names=$(perl -ne '
  BEGIN { $private = 0; $detail = 0; }
  $detail = 1 if /^namespace detail\b/;
  if ($detail) { $detail = 0 if m{^\}\s*//\s*namespace detail}; next; }
  $private = 1 if /^\s*private:/;
  $private = 0 if /^\s*(public|protected):/ || /^\};/;
  next if $private;
  next if m{^\s*//};                     # comments
  s{//.*}{};
  next if m{^\s*#};                      # preprocessor
  # enum class X { A, B, C };
  if (/enum class \w+\s*(?::\s*[\w:]+\s*)?\{([^}]*)\}/) { print "$_\n" for ($1 =~ /\b([A-Z]\w*)\b/g); next; }
  # functions: a name followed by "(" after its return type (calls in inline bodies are not
  # declarations: they follow "return", an operator or nothing)
  while (/([\w>*&]+)\s+\**&*([a-z_][a-z0-9_]*)\s*\(/g) { print "$2\n" unless $1 =~ /^(return|new|delete|throw|co_return|else)$/; }
  # fields: "type name = default;" or "type name;" (not inside parentheses)
  if (/^\s+(?:const\s+)?[\w:<>,\s*&]+?\s+([a-z_][a-z0-9_]*)\s*(?:=[^;()]*|\{[^}]*\})?;/) { print "$1\n"; }
' include/hetcache/*.hpp | sort -u)
options=$(grep -ho 'add_\(option\|flag\|count\|counts\)[^"]*"--[a-z-]*' tools/hetcache/*.cpp | grep -o -- '--[a-z-]*' | sort -u)
skip=" if for while return sizeof switch case static_cast reinterpret_cast const_cast noexcept operator explicit template typename decltype alignas alignof void int bool float double char auto std namespace "
corpus=$(cat tests/*.cpp tests/*.hpp tests/*.sh tests/*/*.cpp tests/*/*.hpp 2>/dev/null)
missing=()
for n in $names; do
  [[ "$skip" == *" $n "* || ${#n} -le 1 || "$n" == *_ ]] && continue  # members_ are private
  grep -qw -- "$n" <<<"$corpus" || missing+=("$n")
done
for o in $options; do
  grep -q -- "$o\b" <<<"$corpus" || missing+=("$o")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  printf 'not mentioned by any test (%d):\n' "${#missing[@]}"
  printf '  %s\n' "${missing[@]}"
  exit 1
fi
