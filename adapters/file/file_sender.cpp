#include "adapters/file/file_sender.h"

#include <fcntl.h>
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace courier::adapters {

namespace {

std::string errno_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

bool write_all(int fd, const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

bool sync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  ::close(fd);
  return ok;
}

class FileSender final : public delivery::Sender, public std::enable_shared_from_this<FileSender> {
 public:
  FileSender()
      : thread_([this] {
          pthread_setname_np(pthread_self(), "file-sender");
          loop();
        }) {}
  ~FileSender() override { stop(); }

  void stop() override {
    {
      std::lock_guard lock(mutex_);
      closing_ = true;
    }
    wake_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

  void send(delivery::Outbound message, std::function<void(delivery::SendOutcome)> done) override {
    {
      std::lock_guard lock(mutex_);
      queue_.push_back(Job{std::move(message), std::move(done), {}, {}});
    }
    wake_.notify_one();
  }

 private:
  struct Job {
    delivery::Outbound message;
    std::function<void(delivery::SendOutcome)> done;
    std::string temporary;
    std::string error;
  };

  void loop() {
    for (;;) {
      std::deque<Job> batch;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return closing_ || !queue_.empty(); });
        if (queue_.empty()) return;
        batch.swap(queue_);
      }
      write_batch(batch);
      for (Job& job : batch) {
        delivery::SendOutcome outcome;
        outcome.kind =
            job.error.empty() ? delivery::SendOutcome::Kind::done : delivery::SendOutcome::Kind::transient;
        outcome.error = job.error;
        job.done(std::move(outcome));
      }
    }
  }

  // Every file of a batch is written without a name (O_TMPFILE) or, where
  // the file system cannot, under a temporary one; then one sync makes them
  // all durable (fdatasync for a single file; for several, syncfs: one
  // flush of the file system instead of one per file, though it also
  // flushes whatever else is pending there); then each is linked or
  // renamed into place and their folders are synced, which makes the names
  // durable. A file without a name costs the folder one entry, not three
  // (the temporary name's, its removal, the final name's).
  static void write_batch(std::deque<Job>& batch) {
    std::set<std::string> folders;
    std::set<std::string> ready_folders;        // known to exist
    std::vector<std::pair<Job*, int>> written;  // with their open descriptors
    for (Job& job : batch) {
      if (!ready_folders.contains(job.message.target)) {
        std::error_code ec;
        std::filesystem::create_directories(job.message.target, ec);
        if (ec) {
          job.error = "cannot create folder " + job.message.target + ": " + ec.message();
          continue;
        }
        ready_folders.insert(job.message.target);
      }
      int fd = ::open(job.message.target.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0640);
      if (fd < 0) {
        job.temporary =
            (std::filesystem::path(job.message.target) / ("." + job.message.file_name + ".tmp")).string();
        fd = ::open(job.temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
      }
      if (fd < 0) {
        job.error = errno_text("cannot create a file in " + job.message.target);
        continue;
      }
      if (!write_all(fd, job.message.body)) {
        job.error = errno_text("cannot write a file in " + job.message.target);
        ::close(fd);
        if (!job.temporary.empty()) ::unlink(job.temporary.c_str());
        continue;
      }
      written.emplace_back(&job, fd);
    }
    bool synced = true;
    if (!written.empty()) {
      const int fd = written.front().second;
      synced = written.size() == 1 ? ::fdatasync(fd) == 0 : ::syncfs(fd) == 0;
      if (!synced) {
        const std::string error = errno_text("cannot sync the written files");
        for (auto& [job, descriptor] : written) job->error = error;
      }
    }
    for (auto& [job, fd] : written) {
      if (synced) publish(*job, fd);
      ::close(fd);
      if (!job->temporary.empty() && !job->error.empty()) ::unlink(job->temporary.c_str());
      if (job->error.empty()) folders.insert(job->message.target);
    }
    for (const std::string& folder : folders) {
      if (sync_path(folder)) continue;
      const std::string error = errno_text("cannot sync folder " + folder);
      for (Job& job : batch) {
        if (job.error.empty() && job.message.target == folder) job.error = error;
      }
    }
  }

  // Gives a written file its name, replacing a file of that name (one
  // written before a crash, or by a replay) as a whole.
  static void publish(Job& job, int fd) {
    const std::string final_path =
        (std::filesystem::path(job.message.target) / job.message.file_name).string();
    if (job.temporary.empty()) {
      // Linked through /proc: linkat with AT_EMPTY_PATH needs a capability.
      const std::string unnamed = "/proc/self/fd/" + std::to_string(fd);
      if (::linkat(AT_FDCWD, unnamed.c_str(), AT_FDCWD, final_path.c_str(), AT_SYMLINK_FOLLOW) == 0) return;
      if (errno != EEXIST) {
        job.error = errno_text("cannot name " + final_path);
        return;
      }
      // A link cannot replace a file: name it temporarily, then rename.
      job.temporary =
          (std::filesystem::path(job.message.target) / ("." + job.message.file_name + ".tmp")).string();
      ::unlink(job.temporary.c_str());
      if (::linkat(AT_FDCWD, unnamed.c_str(), AT_FDCWD, job.temporary.c_str(), AT_SYMLINK_FOLLOW) != 0) {
        job.error = errno_text("cannot name " + job.temporary);
        return;
      }
    }
    if (::rename(job.temporary.c_str(), final_path.c_str()) != 0)
      job.error = errno_text("cannot rename to " + final_path);
  }

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Job> queue_;
  bool closing_ = false;
  std::thread thread_;
};

}  // namespace

std::shared_ptr<delivery::Sender> make_file_sender() {
  return std::make_shared<FileSender>();
}

}  // namespace courier::adapters
