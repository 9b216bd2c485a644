// hetcache: the command-line tool -- demo (the main job), ingest, search, stats, plan, calibrate,
// bench. Errors are one line on stderr and a non-zero exit.
#include <hetcache/error.hpp>

#include <cstdio>
#include <exception>

#include "commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"hetcache: an embedding cache with batched similarity on fibers, TBB and the GPU"};
  app.require_subcommand(1);
  hetcache::cli::add_demo(app);
  hetcache::cli::add_ingest(app);
  hetcache::cli::add_search(app);
  hetcache::cli::add_stats(app);
  hetcache::cli::add_plan(app);
  hetcache::cli::add_calibrate(app);
  hetcache::cli::add_bench(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "hetcache: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
