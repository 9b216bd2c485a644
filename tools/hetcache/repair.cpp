// hetcache repair: salvages what is readable of a damaged database and reports what was lost.
#include <hetcache/hetcache.hpp>

#include <cstdio>

#include "commands.hpp"

namespace hetcache::cli {

void add_repair(CLI::App& app) {
  auto* c = app.add_subcommand(
      "repair",
      "Salvage a damaged database: RocksDB's repair, then every readable entry of the files it "
      "sets aside, every value's checksum verified; reports what was lost");
  static std::string db;
  c->add_option("--db", db, "database directory (no other process may have it open)")->required();
  c->callback([] {
    const RepairReport r = repair_database(db);
    std::printf("before     %s\n", r.before.c_str());
    for (const auto& note : r.notes) std::printf("note       %s\n", note.c_str());
    std::printf(
        "set aside  %llu table file(s) RocksDB could not read whole (in %s/lost)\n"
        "salvaged   %llu vectors from them, checksums verified\n"
        "lost       %llu entries of those tables that could not be read back\n"
        "removed    %llu values that failed their checksum\n"
        "now        %llu vectors (%llu expired), every checksum verified\n",
        static_cast<unsigned long long>(r.tables_set_aside), db.c_str(),
        static_cast<unsigned long long>(r.salvaged),
        static_cast<unsigned long long>(r.unrecoverable),
        static_cast<unsigned long long>(r.corrupt_removed),
        static_cast<unsigned long long>(r.vectors_after),
        static_cast<unsigned long long>(r.expired_after));
  });
}

}  // namespace hetcache::cli
