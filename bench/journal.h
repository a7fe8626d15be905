// The disk's durability limit for the benchmarks' reference servers: each
// body appended to one file, its completion run only after the fdatasync
// that covers it. Bodies that arrive while a sync runs share the next one
// (group commit), as courier's store does.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace courier::bench {

class Journal {
 public:
  explicit Journal(const char* path) : fd_(::open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)) {
    if (fd_ < 0) throw std::runtime_error(std::string("cannot open ") + path);
    thread_ = std::thread([this] { loop(); });
  }

  void append(std::string body, std::function<void()> done) {
    {
      std::lock_guard lock(mutex_);
      pending_.push_back({std::move(body), std::move(done)});
    }
    wake_.notify_one();
  }

 private:
  struct Entry {
    std::string body;
    std::function<void()> done;
  };

  void loop() {
    std::vector<Entry> batch;
    for (;;) {
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return !pending_.empty(); });
        batch.swap(pending_);
      }
      std::string data;
      for (const Entry& e : batch) data += e.body;
      if (::write(fd_, data.data(), data.size()) != static_cast<ssize_t>(data.size()) ||
          ::fdatasync(fd_) != 0) {
        std::perror("durable_server");
        std::exit(1);
      }
      for (Entry& e : batch) e.done();
      batch.clear();
    }
  }

  int fd_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<Entry> pending_;
  std::thread thread_;
};

}  // namespace courier::bench
