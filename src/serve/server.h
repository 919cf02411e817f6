// The HTTP front end (cpp-httplib): KServe v2 routes for one model, /metrics.
#pragma once
#include <atomic>
#include <memory>
#include <string>

#include "deepep/engine.h"
#include "serve/batcher.h"
#include "serve/metrics.h"
#include "serve/protocol.h"

namespace httplib {
class Server;
}

namespace deepep::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string model_name;
  size_t max_request_bytes = size_t(64) << 20;
  int http_threads = 64;
  int http_nice = 5;  // connection threads run this much nicer than the compute workers
};

class HttpServer {
 public:
  HttpServer(std::shared_ptr<Engine> engine, Batcher& batcher, Metrics& metrics, ServerOptions options);
  ~HttpServer();
  // Binds the socket (port 0: any free port); returns the port, or -1.
  int bind();
  // Serves until stop(); false when listening failed.
  bool listen();
  void stop();
  // Infer requests being handled right now.
  int64_t inflight() const;

 private:
  void routes();
  std::shared_ptr<Engine> engine_;
  Batcher& batcher_;
  Metrics& metrics_;
  ServerOptions opt_;
  std::unique_ptr<httplib::Server> http_;
};

}  // namespace deepep::serve
