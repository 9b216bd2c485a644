#include "npy_header.hpp"

#include <limits>
#include <optional>
#include <stdexcept>

namespace hetcache::cli {
namespace {

[[noreturn]] void malformed(const std::string& what) {
  throw std::invalid_argument("malformed .npy header: " + what);
}

// A cursor over the header text with the few Python literal forms NumPy writes.
class Literal {
 public:
  explicit Literal(std::string_view text) : text_(text) {}

  void skip_space() {
    while (at_ < text_.size() &&
           (text_[at_] == ' ' || text_[at_] == '\t' || text_[at_] == '\n' || text_[at_] == '\r'))
      ++at_;
  }
  bool done() const { return at_ == text_.size(); }
  char peek() const { return at_ < text_.size() ? text_[at_] : '\0'; }
  bool take(char c) {
    skip_space();
    if (peek() != c) return false;
    ++at_;
    return true;
  }
  void expect(char c, const char* where) {
    if (!take(c)) malformed(std::string("expected '") + c + "' " + where);
  }
  // A quoted string without escapes (NumPy never writes any).
  std::optional<std::string> string() {
    skip_space();
    const char quote = peek();
    if (quote != '\'' && quote != '"') return std::nullopt;
    const auto end = text_.find(quote, at_ + 1);
    if (end == std::string_view::npos) malformed("unterminated string");
    std::string s(text_.substr(at_ + 1, end - at_ - 1));
    if (s.find('\\') != std::string::npos) malformed("escapes in a string are not supported");
    at_ = end + 1;
    return s;
  }
  std::optional<bool> boolean() {
    skip_space();
    for (const auto& [word, value] : {std::pair{"True", true}, std::pair{"False", false}}) {
      const std::string_view w(word);
      if (text_.substr(at_, w.size()) == w) {
        at_ += w.size();
        return value;
      }
    }
    return std::nullopt;
  }
  // A non-negative integer (Python 2 files may add 'L'); overflow past 2^63 is an error.
  std::uint64_t integer() {
    skip_space();
    if (peek() < '0' || peek() > '9') malformed("expected a whole number in the shape");
    std::uint64_t v = 0;
    while (peek() >= '0' && peek() <= '9') {
      const auto digit = static_cast<std::uint64_t>(peek() - '0');
      if (v > (std::uint64_t{1} << 63) / 10) malformed("a shape entry is too large");
      v = v * 10 + digit;
      ++at_;
    }
    if (v > (std::uint64_t{1} << 63)) malformed("a shape entry is too large");
    if (peek() == 'L') ++at_;
    return v;
  }
  // "(a, b, ...)" with an optional trailing comma; "(5)" is an int in Python, not a tuple.
  std::vector<std::uint64_t> tuple() {
    expect('(', "to open the shape tuple");
    std::vector<std::uint64_t> items;
    bool comma = false;
    while (!take(')')) {
      if (!items.empty() && !comma) malformed("expected ',' between shape entries");
      items.push_back(integer());
      comma = take(',');
    }
    if (items.size() == 1 && !comma)
      malformed("the shape '(n)' is not a tuple (NumPy writes '(n,)')");
    return items;
  }

 private:
  std::string_view text_;
  std::size_t at_ = 0;
};

void parse_descr(const std::string& descr, NpyHeader& h) {
  // NumPy writes a byte order ('<' little, '>' big, '=' native: little here) and a type code.
  if (descr.size() == 3 && (descr[0] == '<' || descr[0] == '>' || descr[0] == '=') &&
      descr[1] == 'f' && (descr[2] == '2' || descr[2] == '4' || descr[2] == '8')) {
    h.big_endian = descr[0] == '>';
    h.item_bytes = static_cast<std::size_t>(descr[2] - '0');
    return;
  }
  throw std::invalid_argument("dtype '" + descr +
                              "' is not supported (expected float16, float32 or float64)");
}

}  // namespace

NpyHeader parse_npy_header(std::string_view text) {
  Literal in(text);
  NpyHeader h;
  bool have_descr = false, have_order = false, have_shape = false;
  in.expect('{', "at the start of the header");
  bool comma = true;
  while (!in.take('}')) {
    if (!comma) malformed("expected ',' between entries");
    const auto key = in.string();
    if (!key) malformed("expected a quoted key");
    in.expect(':', "after a key");
    const auto once = [&](bool& seen) {
      if (seen) malformed("the key '" + *key + "' appears twice");
      seen = true;
    };
    if (*key == "descr") {
      once(have_descr);
      const auto value = in.string();
      if (!value) {
        in.skip_space();
        if (in.peek() == '[') throw std::invalid_argument("structured dtypes are not supported");
        malformed("'descr' is not a string");
      }
      h.descr = *value;
      parse_descr(*value, h);
    } else if (*key == "fortran_order") {
      once(have_order);
      const auto value = in.boolean();
      if (!value) malformed("'fortran_order' is not True or False");
      h.fortran_order = *value;
    } else if (*key == "shape") {
      once(have_shape);
      h.shape = in.tuple();
    } else {
      malformed("unknown key '" + *key + "' (NumPy writes descr, fortran_order and shape only)");
    }
    comma = in.take(',');
  }
  in.skip_space();
  if (!in.done()) malformed("text after the closing '}'");
  if (!have_descr || !have_order || !have_shape)
    malformed(std::string("missing key '") +
              (!have_descr   ? "descr"
               : !have_order ? "fortran_order"
                             : "shape") +
              "'");
  return h;
}

std::string shape_string(const std::vector<std::uint64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

}  // namespace hetcache::cli
