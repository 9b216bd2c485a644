// A file the command writes (search hits, bench CSV / JSON / PNG), written so that a failure never
// destroys anything: the data goes to a temporary file beside the target, which replaces the
// target only when commit() has flushed and fsynced it. A write error (no space, file too large, a
// full device) is one error naming the file and the reason; an object destroyed without commit()
// removes its temporary file and leaves the target as it was.
#pragma once

#include <fstream>
#include <string>

namespace hetcache::cli {

class OutputFile {
 public:
  // Refuses a directory, a path inside a RocksDB database directory (one holding CURRENT and
  // IDENTITY, such as --db), and a directory that does not exist; opens the temporary file.
  explicit OutputFile(std::string path);
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  std::ostream& stream() { return out_; }
  // The temporary file, for a program that writes the output itself (gnuplot); empty when the
  // target is written in place.
  const std::string& temporary_path() const { return temporary_; }
  // Flushes, fsyncs and renames the temporary file over the target. Throws Error(InvalidArgument)
  // with the reason when any write failed.
  void commit();

 private:
  std::string path_, temporary_;
  std::ofstream out_;
  bool committed_ = false;
};

}  // namespace hetcache::cli
