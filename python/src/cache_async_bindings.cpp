// The cache's async calls for asyncio: each starts the C++ async form and returns at once; when
// its Future is ready, the completing thread (a fiber thread, the arena, the I/O pool) takes the
// GIL only long enough to hand a result getter to `done`, which the Python side passes to the
// event loop with call_soon_threadsafe. The loop thread then calls the getter (the future is
// ready: it never waits) and resolves the asyncio future. Nothing here blocks the loop.
#include <hetcache/cache.hpp>
#include <hetcache/error.hpp>
#include <hetcache/future.hpp>

#include <nanobind/nanobind.h>
#include <nanobind/stl/optional.h>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "arrays.hpp"
#include "cache_state.hpp"

namespace hetcache::python {
namespace nb = nanobind;
using namespace nb::literals;

namespace {

// One async call: the cache, the inputs the C++ call reads until it is ready, its future and the
// result getter's conversion. Python objects only behind deleters that take the GIL.
template <typename T>
struct AsyncCall {
  std::shared_ptr<EmbeddingCache> cache;  // kept open until the call is done
  std::vector<std::string> keys;
  std::unique_ptr<float[]> rows;  // get_batch / get_or_compute output
  std::size_t dim = 0;
  // put_batch's input as the C++ call reads it (in place, or the converted copy), released with
  // the GIL taken wherever the call ends.
  std::shared_ptr<const InMatrix> values;
  Future<T> future;

  // The output rows for keys.size() x dim floats, and the view the C++ call writes through.
  MutableMatrixView make_rows(std::size_t row_dim) {
    dim = row_dim;
    rows.reset(new float[std::max<std::size_t>(1, keys.size() * dim)]);
    return MutableMatrixView(rows.get(), keys.size(), dim);
  }
  // The rows as a numpy array that owns them (once the future is ready).
  nb::ndarray<nb::numpy, float> take_rows() {
    float* data = rows.get();
    return numpy_owning(std::move(rows), data, {keys.size(), dim});
  }
};

// Calls done(getter) on the completing thread, with the GIL; getter() returns convert(call).
template <typename T, typename Convert>
void when_ready(std::shared_ptr<AsyncCall<T>> call, nb::object done, Convert convert) {
  std::shared_ptr<nb::object> callback = gil_safe(std::move(done));
  Future<T>& future = call->future;
  future.on_ready([call = std::move(call), callback, convert]() mutable {
    nb::gil_scoped_acquire gil;
    // The getter takes this callback's reference to the call (and so to the cache): the cache is
    // then let go where the getter goes -- the event loop's thread -- not on this pool thread.
    auto mine = std::move(call);
    auto hand_over = std::move(callback);
    try {
      nb::object take_result = nb::cpp_function([mine, convert]() {
        if (!mine->future.valid())
          throw Error(ErrorCode::InvalidArgument, "an async result is taken once");
        return convert(*mine);
      });
      mine.reset();
      (*hand_over)(take_result);
    } catch (nb::python_error& e) {
      e.discard_as_unraisable("hetcache: handing an async result to the event loop");
    }
  });
}

}  // namespace

void bind_cache_async(nb::class_<PyCache>& cls) {
  cls.def(
         "_get_batch_async",
         [](const PyCache& c, nb::handle keys, nb::object done) {
           auto call = std::make_shared<AsyncCall<std::vector<std::uint8_t>>>();
           call->cache = c.open();
           call->keys = keys_of(keys, "keys");
           const MutableMatrixView out = call->make_rows(c.dim);
           {
             nb::gil_scoped_release unlocked;
             call->future = call->cache->get_batch_async(call->keys, out);
           }
           when_ready(call, std::move(done), [](AsyncCall<std::vector<std::uint8_t>>& a) {
             std::vector<std::uint8_t> found = a.future.get();
             return nb::make_tuple(a.take_rows(), mask_of(std::move(found)));
           });
         },
         "keys"_a, "done"_a, "Starts get_batch; done(getter) is called when it is ready.")
      .def(
          "_put_batch_async",
          [](const PyCache& c, nb::handle keys, nb::handle vectors, std::optional<double> ttl,
             nb::object done) {
            auto call = std::make_shared<AsyncCall<void>>();
            call->cache = c.open();
            KeyedRows w = keyed_rows(keys, vectors, "put_batch");
            call->keys = std::move(w.keys);
            call->values = gil_safe<const InMatrix>(std::move(w.values));
            const Ttl t = ttl_of(ttl, c.default_ttl);
            {
              nb::gil_scoped_release unlocked;
              call->future = call->cache->put_batch_async(call->keys, view_of(*call->values), t);
            }
            when_ready(call, std::move(done), [](AsyncCall<void>& a) {
              a.future.get();
              return nb::none();
            });
          },
          "keys"_a, "vectors"_a, "ttl"_a.none(), "done"_a,
          "Starts put_batch; done(getter) is called when it is ready.")
      .def(
          "_get_or_compute_async",
          [](const PyCache& c, nb::handle keys, nb::object fn, std::optional<double> ttl,
             nb::object done) {
            auto call = std::make_shared<AsyncCall<std::size_t>>();
            call->cache = c.open();
            call->keys = keys_of(keys, "keys");
            const MutableMatrixView out = call->make_rows(c.dim);
            const EmbedFn embed = embed_fn(std::move(fn), c.dim);
            const Ttl t = ttl_of(ttl, c.default_ttl);
            {
              nb::gil_scoped_release unlocked;
              call->future = call->cache->get_or_compute_async(call->keys, out, embed, t);
            }
            when_ready(call, std::move(done), [](AsyncCall<std::size_t>& a) {
              (void)a.future.get();
              return nb::object(nb::cast(a.take_rows()));
            });
          },
          "keys"_a, "fn"_a, "ttl"_a.none(), "done"_a,
          "Starts get_or_compute; done(getter) is called when it is ready.");
}

}  // namespace hetcache::python
