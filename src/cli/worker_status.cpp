#include "cli/worker_status.h"

#include <chrono>
#include <utility>

#include <boost/json.hpp>

namespace turbine::cli {
namespace {

constexpr const char* kJson = "application/json";

}  // namespace

WorkerStatusServer::WorkerStatusServer(std::string host, uint16_t port, WorkerStatusInfo info,
                                       std::shared_ptr<engine::AsyncEngine> engine,
                                       std::function<bool()> ready)
    : metrics_(std::make_unique<metrics::FrontendMetrics>(info.model)) {
  http::Router router;
  router.add("GET", "/live",
             [](const http::Request&, http::ResponseWriter& w) -> boost::asio::awaitable<void> {
               co_await w.send(200, kJson, R"({"status":"live","message":"Service is live"})");
             });
  router.add(
      "GET", "/health",
      [info, ready](const http::Request&, http::ResponseWriter& w) -> boost::asio::awaitable<void> {
        const bool ok = ready();
        boost::json::object o;
        o["status"] = ok ? "healthy" : "unhealthy";
        boost::json::array instances;
        instances.push_back(boost::json::object{{"namespace", info.ns},
                                                {"component", info.component},
                                                {"endpoint", info.endpoint},
                                                {"instance_id", info.instance_id}});
        o["instances"] = std::move(instances);
        co_await w.send(ok ? 200 : 503, kJson, boost::json::serialize(o));
      });
  const auto start = std::chrono::steady_clock::now();
  metrics::FrontendMetrics* m = metrics_.get();
  router.add("GET", "/metrics",
             [m, engine, start, model = info.model](
                 const http::Request&, http::ResponseWriter& w) -> boost::asio::awaitable<void> {
               m->model(model).observe_engine(engine->stats());
               m->uptime.Set(
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
               co_await w.send(200, "text/plain; version=0.0.4; charset=utf-8", m->serialize());
             });
  http::ServerOptions opts;
  opts.host = std::move(host);
  opts.port = port;
  server_ = std::make_unique<http::Server>(opts, std::move(router));
}

WorkerStatusServer::~WorkerStatusServer() {
  stop();
}

Status WorkerStatusServer::start() {
  return server_->start();
}

uint16_t WorkerStatusServer::port() const {
  return server_->port();
}

void WorkerStatusServer::stop() {
  if (server_) server_->stop();
}

}  // namespace turbine::cli
