// content_key: a stable key for (model, text) that cannot collide across fields.
#include <hetcache/cache.hpp>

#include <cstdint>
#include <string>

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace hetcache {
namespace {

// Each field is its length as a little-endian u64, then its bytes: ("ab", "c") and ("a", "bc")
// hash differently.
void add_field(XXH3_state_t& state, const void* data, std::uint64_t size) {
  unsigned char length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<unsigned char>(size >> (8 * i));
  XXH3_128bits_update(&state, length, sizeof(length));
  XXH3_128bits_update(&state, data, size);
}

}  // namespace

std::string content_key(std::string_view model, std::size_t dim, std::string_view text) {
  XXH3_state_t state;
  XXH3_128bits_reset(&state);
  add_field(state, model.data(), model.size());
  const std::string dim_text = std::to_string(dim);
  add_field(state, dim_text.data(), dim_text.size());
  constexpr std::string_view kDtype = "f32";
  add_field(state, kDtype.data(), kDtype.size());
  add_field(state, text.data(), text.size());
  // The canonical (big-endian) form is what xxhsum -H2 prints, so keys can be checked by hand.
  XXH128_canonical_t canonical;
  XXH128_canonicalFromHash(&canonical, XXH3_128bits_digest(&state));
  static constexpr char kHex[] = "0123456789abcdef";
  std::string key(32, '0');
  for (int i = 0; i < 16; ++i) {
    key[2 * i] = kHex[canonical.digest[i] >> 4];
    key[2 * i + 1] = kHex[canonical.digest[i] & 15];
  }
  return key;
}

std::string EmbeddingCache::content_key(std::string_view model, std::string_view text) const {
  return hetcache::content_key(model, dim(), text);
}

}  // namespace hetcache
