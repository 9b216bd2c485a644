// Benchmark peer: LMDB (liblmdb-dev) as the alternative embedded store, holding the same values as
// hetcache's stores (value_format: header, checksum, payload) under the same keys, so a read pays
// the same decode and checksum. Commits without fsync (MDB_NOSYNC: a process crash loses nothing,
// like the cache's AsyncWal); sync() forces everything to disk.
#pragma once

#include <hetcache/hetcache.hpp>

#include <lmdb.h>

#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "cache/durable/value_format.hpp"

namespace hetcache::bench {

class LmdbPeer {
 public:
  LmdbPeer(const std::string& dir, std::size_t map_bytes, std::size_t dim) : dim_(dim) {
    check(mdb_env_create(&env_), "env_create");
    check(mdb_env_set_mapsize(env_, map_bytes), "set_mapsize");
    check(mdb_env_open(env_, dir.c_str(), MDB_NOSYNC | MDB_NORDAHEAD, 0644), "env_open " + dir);
    MDB_txn* txn = nullptr;
    check(mdb_txn_begin(env_, nullptr, 0, &txn), "txn_begin");
    check(mdb_dbi_open(txn, nullptr, 0, &dbi_), "dbi_open");
    check(mdb_txn_commit(txn), "commit");
  }
  ~LmdbPeer() { mdb_env_close(env_); }
  LmdbPeer(const LmdbPeer&) = delete;
  LmdbPeer& operator=(const LmdbPeer&) = delete;

  // One write transaction: keys[order[i]] with rows row(order[i]) for i in [first, first + n).
  // `append`: the keys come in ascending order (MDB_APPEND, LMDB's bulk-load path).
  void put(const std::vector<std::string>& keys, MatrixView rows,
           const std::vector<std::size_t>& order, std::size_t first, std::size_t n, bool append) {
    MDB_txn* txn = nullptr;
    check(mdb_txn_begin(env_, nullptr, 0, &txn), "txn_begin");
    std::string value;
    for (std::size_t i = first; i < first + n; ++i) {
      const std::size_t r = order[i];
      cache::encode_value(keys[r], rows.row(r), dim_, cache::kNeverExpires, value);
      MDB_val k{keys[r].size(), const_cast<char*>(keys[r].data())};
      MDB_val v{value.size(), value.data()};
      const int rc = mdb_put(txn, dbi_, &k, &v, append ? MDB_APPEND : 0);
      if (rc != 0) {
        mdb_txn_abort(txn);
        check(rc, "put");
      }
    }
    check(mdb_txn_commit(txn), "commit");
  }
  void sync() { check(mdb_env_sync(env_, 1), "sync"); }

  // Reads and decodes keys into out in one read transaction; returns how many were found intact.
  std::size_t get_batch(const std::vector<std::string>& keys, MutableMatrixView out) {
    MDB_txn* txn = nullptr;
    check(mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn), "txn_begin");
    std::size_t hits = 0;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      MDB_val k{keys[i].size(), const_cast<char*>(keys[i].data())};
      MDB_val v;
      if (mdb_get(txn, dbi_, &k, &v) != 0) continue;
      const auto decoded = cache::decode_value(
          keys[i], std::string_view(static_cast<const char*>(v.mv_data), v.mv_size), dim_,
          out.row(i));
      hits += decoded.status == cache::DecodeStatus::Ok;
    }
    mdb_txn_abort(txn);
    return hits;
  }

  static std::string version() { return mdb_version(nullptr, nullptr, nullptr); }

 private:
  static void check(int rc, const std::string& what) {
    if (rc != 0) throw std::runtime_error("LMDB " + what + ": " + mdb_strerror(rc));
  }
  MDB_env* env_ = nullptr;
  MDB_dbi dbi_ = 0;
  std::size_t dim_;
};

}  // namespace hetcache::bench
