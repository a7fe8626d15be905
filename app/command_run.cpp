// courier run [--config FILE]: runs the engine until SIGINT or SIGTERM.
#include <fcntl.h>
#include <pthread.h>
#include <sys/file.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include <condition_variable>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <mutex>
#include <thread>

#include "adapters/tls/tls.h"
#include "app/commands.h"
#include "app/config.h"
#include "engine/store/sqlite_store.h"

#include <nlohmann/json.hpp>

namespace courier::app {

namespace {

struct RunOptions {
  std::string config = "conf/courier.yaml";
  int threads = 2;
};

// One engine per data directory: a second would deliver everything twice.
bool lock_data_dir(const std::string& data_dir, std::string& error) {
  const std::string path = (std::filesystem::path(data_dir) / "courier.lock").string();
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0 || ::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    error = "another courier is running on data directory " + data_dir + " (cannot lock " + path + ")";
    return false;
  }
  return true;  // held until the process exits
}

// SIGHUP: every listener and the senders read their certificates and keys
// again. What cannot be read is reported and the old material stays.
void reload_certificates(Config& config) {
  int failures = 0;
  auto attempt = [&failures](const std::string& what, const std::function<void()>& reload) {
    try {
      reload();
    } catch (const std::exception& e) {
      ++failures;
      std::cerr << "courier: " << what << ": kept the old certificate: " << e.what() << '\n';
    }
  };
  for (auto& listener : config.listeners)
    attempt("listener " + listener->name(), [&listener] { listener->reload_tls(); });
  if (config.outbound_tls) attempt("outbound-tls", [&config] { config.outbound_tls->reload(); });
  std::cerr << "courier: certificates reloaded" << (failures ? " with errors" : "") << '\n';
}

// What the console shows of this process. Its route report checks the
// files as they are on disk now: an analyst's edit since the start shows
// there before a restart would refuse it.
OperatorInfo operator_info(const std::string& config_path, const Config& config, Engine& engine) {
  OperatorInfo info;
  info.version = COURIER_VERSION;
  info.started_at = store::now_millis();
  for (const auto& listener : config.listeners)
    info.listeners.emplace_back(listener->name(), listener->describe());
  info.route_report = [config_path] {
    std::vector<std::string> problems;
    const std::vector<RouteTestResult> results = run_route_tests(config_path, {}, problems);
    nlohmann::json tests = nlohmann::json::array();
    for (const RouteTestResult& r : results)
      tests.push_back({{"file", r.file},
                       {"name", r.name},
                       {"passed", r.differences.empty()},
                       {"differences", r.differences}});
    return nlohmann::json{{"problems", problems}, {"tests", std::move(tests)}};
  };
  const auto retention = config.retention;
  info.prune = [&engine, retention] { return engine.store().prune(store::now_millis() - retention.count()); };
  return info;
}

int run_command(const RunOptions& options) {
  std::vector<std::string> errors;
  Loaded loaded = load_all(options.config, {}, errors);
  if (!errors.empty()) {
    for (const std::string& e : errors) std::cerr << "courier run: " << e << '\n';
    return 1;
  }
  Config& config = loaded.config;
  std::error_code ec;
  std::filesystem::create_directories(config.data_dir, ec);
  if (ec) {
    std::cerr << "courier run: cannot create data directory " << config.data_dir << ": " << ec.message()
              << '\n';
    return 1;
  }
  std::string error;
  if (!lock_data_dir(config.data_dir, error)) {
    std::cerr << "courier run: " << error << '\n';
    return 1;
  }
  // Block the stop signals before any thread exists; the main thread waits
  // for one with sigwait while the others serve.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGHUP);  // reload certificates and keys
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  boost::asio::io_context io(options.threads);
  std::unique_ptr<Engine> engine;
  try {
    engine = std::make_unique<Engine>(io.get_executor(), config.engine, std::move(loaded.routes),
                                      store::open_sqlite_store(config.data_dir),
                                      adapters::make_senders(io, config.engine.v2_maps, config.outbound_tls));
    for (auto& listener : config.listeners) listener->start(io, *engine);
  } catch (const std::exception& e) {
    std::cerr << "courier run: " << e.what() << '\n';
    return 1;
  }
  // The listeners are bound (port 0 has become a real port); peers can now
  // be told where to send responses.
  std::string public_url = config.public_url;
  for (const auto& listener : config.listeners) {
    if (public_url.empty()) public_url = listener->base_url();
  }
  engine->set_public_url(public_url);
  // Where operator tools reach this engine (the port may have been chosen
  // by the system): courier messages reads it.
  if (!config.listeners.empty()) {
    std::ofstream((std::filesystem::path(config.data_dir) / "listener-url").string())
        << config.listeners.front()->base_url() << '\n';
  }
  engine->set_operator_info(operator_info(options.config, config, *engine));
  engine->start();

  std::cerr << "courier: running with " << options.config << ", data in " << config.data_dir << ", "
            << engine->routes().routes.size() << " route(s)\n";
  for (const auto& listener : config.listeners) {
    std::cerr << "courier: listener " << listener->name() << ": " << listener->describe() << '\n';
  }
  if (config.listeners.empty())
    std::cerr << "courier: no listeners are configured, so no messages are received\n";
  std::cerr << "courier: ready\n";

  std::vector<std::thread> threads;
  for (int i = 0; i < options.threads; ++i)
    threads.emplace_back([&io] {
      pthread_setname_np(pthread_self(), "courier-io");
      io.run();
    });
  auto work = boost::asio::make_work_guard(io);

  // Retention: prune finished conversations at start and then hourly.
  // (Memory freed after a burst goes back to the system by jemalloc's
  // background thread: see main.cpp.)
  std::mutex prune_mutex;
  std::condition_variable prune_wake;
  bool stopping = false;
  std::thread housekeeper([&] {
    pthread_setname_np(pthread_self(), "housekeeper");
    std::unique_lock lock(prune_mutex);
    do {
      lock.unlock();
      const std::int64_t removed = engine->operator_info().prune();
      if (removed > 0)
        std::cerr << "courier: pruned " << removed << " finished conversation(s) past retention\n";
      lock.lock();
    } while (!prune_wake.wait_for(lock, std::chrono::hours(1), [&] { return stopping; }));
  });

  int signal = 0;
  while (sigwait(&stop, &signal) == 0 && signal == SIGHUP) reload_certificates(config);
  {
    std::lock_guard lock(prune_mutex);
    stopping = true;
  }
  prune_wake.notify_one();
  housekeeper.join();
  std::cerr << "courier: stopping on signal " << signal << '\n';
  for (auto& listener : config.listeners) {
    boost::asio::post(io, [&listener] { listener->stop(); });
  }
  engine->stop();
  work.reset();
  io.stop();
  for (std::thread& t : threads) t.join();
  engine.reset();
  std::cerr << "courier: stopped\n";
  return 0;
}

}  // namespace

void add_run_command(CLI::App& app, int& status) {
  auto options = std::make_shared<RunOptions>();
  CLI::App* cmd = app.add_subcommand("run", "Run the engine with a configuration file.");
  cmd->add_option("--config", options->config, "the engine configuration")->capture_default_str();
  cmd->add_option("--threads", options->threads, "threads serving connections and deliveries")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  cmd->callback([options, &status] { status = run_command(*options); });
}

}  // namespace courier::app
