// Flags shared by `turbine frontend` and `turbine worker`: discovery and event plane. Each flag
// is also read from a TURBINE_* environment variable (flag > variable > default).
#pragma once

#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "common/status.h"
#include "runtime/discovery.h"
#include "runtime/etcd_discovery.h"
#include "runtime/event_plane.h"
#include "serving/instance_connector.h"

namespace turbine::cli {

struct RuntimeFlags {
  std::string discovery = "etcd";  // etcd | memory
  std::string etcd_endpoints = "http://127.0.0.1:2379";
  int lease_ttl_s = 10;
  std::string etcd_user, etcd_password, etcd_ca, etcd_cert, etcd_key;
  std::string nats_url;  // empty: no event plane
  std::string nats_user, nats_password, nats_token, nats_creds, nats_ca;
  std::string ns = "turbine";
  std::string request_plane = "tcp";  // tcp | nats (needs --nats-url)
  // The request plane's shared token (issue 18): a file (a mounted Kubernetes Secret), or the
  // value in TURBINE_REQUEST_PLANE_TOKEN. Workers refuse peers without it; frontends and decode
  // workers present it.
  std::string request_plane_token_file;
  double request_plane_silence_timeout_s = 5.0;  // a worker silent this long is hung (frontend)

  void add_to(CLI::App& cmd);
  // The discovery client (etcd: grants the lease). memory: a store of its own (one process).
  Result<std::unique_ptr<runtime::Discovery>> make_discovery() const;
  // Null when no --nats-url was given.
  Result<std::shared_ptr<runtime::EventPlane>> make_event_plane() const;
  // The request-plane token: "" when none is configured; an error for an unreadable or empty
  // file, or a TURBINE_REQUEST_PLANE_TOKEN set to "" (an unset secret must not turn it off).
  Result<std::string> request_plane_token() const;
  // How a frontend reaches the workers it discovers (the request plane's client side);
  // `plane` is make_event_plane()'s (nats needs it).
  Result<std::unique_ptr<serving::InstanceConnector>> make_connector(
      int pool_size, int n_threads, const std::shared_ptr<runtime::EventPlane>& plane) const;
};

}  // namespace turbine::cli
