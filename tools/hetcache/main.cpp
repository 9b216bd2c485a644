// hetcache: the command-line tool -- demo (the main job), ingest, search, stats, repair, plan,
// calibrate, bench. Every error, a mistyped option included, is one line on stderr
// ("hetcache: error: ...") and exit status 1; --help and --version exit 0.
#include <hetcache/error.hpp>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>
#include <string>

#include "commands.hpp"

namespace {

int fail(std::string message) {
  for (char& c : message)
    if (c == '\n') c = ' ';
  std::fprintf(stderr, "hetcache: error: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  // A write past RLIMIT_FSIZE then fails with EFBIG, reported like any other write error, instead
  // of killing the process half-way through an output.
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{"hetcache: an embedding cache with batched similarity on fibers, TBB and the GPU"};
  app.require_subcommand(1);
  app.set_version_flag("--version", [] { return hetcache::cli::version_text(); });
  hetcache::cli::add_demo(app);
  hetcache::cli::add_ingest(app);
  hetcache::cli::add_search(app);
  hetcache::cli::add_stats(app);
  hetcache::cli::add_repair(app);
  hetcache::cli::add_plan(app);
  hetcache::cli::add_calibrate(app);
  hetcache::cli::add_bench(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::string where = "hetcache";
    for (const CLI::App* sub = &app; !sub->get_subcommands().empty();) {
      sub = sub->get_subcommands().front();
      where += " " + sub->get_name();
    }
    return fail(std::string(e.what()) + " (see '" + where + " --help')");
  } catch (const hetcache::Error& e) {
    if (e.code() == hetcache::ErrorCode::Corruption)
      return fail(std::string(e.what()) +
                  " ('hetcache repair --db DIR' salvages what is readable)");
    return fail(e.what());
  } catch (const std::exception& e) {
    return fail(e.what());
  }
  // Output that never reached stdout (a full disk, /dev/full, a closed descriptor) is a failure.
  errno = 0;
  std::cout.flush();
  if (std::fflush(stdout) != 0 || std::ferror(stdout) || !std::cout)
    return fail(std::string("cannot write to standard output: ") +
                std::strerror(errno ? errno : EIO));
  return 0;
}
