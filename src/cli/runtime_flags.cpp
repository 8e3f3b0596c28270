#include "cli/runtime_flags.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "serving/connectors.h"

namespace turbine::cli {

void RuntimeFlags::add_to(CLI::App& cmd) {
  cmd.add_option("--namespace", ns, "Component namespace (keys v1/instances/{ns}/...)")
      ->envname("TURBINE_NAMESPACE")
      ->capture_default_str();
  cmd.add_option("--discovery", discovery, "Discovery backend: etcd, or memory (one process)")
      ->check(CLI::IsMember({"etcd", "memory"}))
      ->envname("TURBINE_DISCOVERY")
      ->capture_default_str();
  cmd.add_option("--etcd-endpoints", etcd_endpoints, "etcd URL[,URL...]")
      ->envname("TURBINE_ETCD_ENDPOINTS")
      ->capture_default_str();
  cmd.add_option("--lease-ttl", lease_ttl_s, "Seconds an instance outlives its last keep-alive")
      ->check(CLI::Range(2, 3600))
      ->envname("TURBINE_LEASE_TTL")
      ->capture_default_str();
  cmd.add_option("--etcd-user", etcd_user, "etcd user (with --etcd-password)")
      ->envname("TURBINE_ETCD_USER");
  cmd.add_option("--etcd-password", etcd_password, "etcd password")
      ->envname("TURBINE_ETCD_PASSWORD");
  cmd.add_option("--etcd-ca", etcd_ca, "CA bundle for https:// etcd endpoints")
      ->envname("TURBINE_ETCD_CA");
  cmd.add_option("--etcd-cert", etcd_cert, "Client certificate for etcd")
      ->envname("TURBINE_ETCD_CERT");
  cmd.add_option("--etcd-key", etcd_key, "Client key for etcd")->envname("TURBINE_ETCD_KEY");
  cmd.add_option("--nats-url", nats_url, "NATS server URL[,URL...] for KV events and load")
      ->envname("TURBINE_NATS_URL");
  cmd.add_option("--request-plane", request_plane,
                 "Worker requests over direct TCP, or NATS request/reply (needs --nats-url)")
      ->check(CLI::IsMember({"tcp", "nats"}))
      ->envname("TURBINE_REQUEST_PLANE")
      ->capture_default_str();
  cmd.add_option("--nats-user", nats_user, "NATS user")->envname("TURBINE_NATS_USER");
  cmd.add_option("--nats-password", nats_password, "NATS password")
      ->envname("TURBINE_NATS_PASSWORD");
  cmd.add_option("--nats-token", nats_token, "NATS token")->envname("TURBINE_NATS_TOKEN");
  cmd.add_option("--nats-creds", nats_creds, "NATS credentials file")
      ->envname("TURBINE_NATS_CREDS");
  cmd.add_option("--nats-ca", nats_ca, "CA bundle for TLS to NATS")->envname("TURBINE_NATS_CA");
  cmd.add_option("--request-plane-token-file", request_plane_token_file,
                 "File holding the request plane's shared token (e.g. a mounted Secret); workers "
                 "refuse peers without it. Or set TURBINE_REQUEST_PLANE_TOKEN")
      ->envname("TURBINE_REQUEST_PLANE_TOKEN_FILE");
  cmd.add_option("--request-plane-silence-timeout", request_plane_silence_timeout_s,
                 "Seconds without a pong after which a worker counts as hung: its requests "
                 "migrate and it gets no new ones until it answers (TCP request plane)")
      ->check(CLI::Range(0.5, 3600.0))
      ->envname("TURBINE_REQUEST_PLANE_SILENCE_TIMEOUT")
      ->capture_default_str();
}

Result<std::string> RuntimeFlags::request_plane_token() const {
  constexpr const char* kEnv = "TURBINE_REQUEST_PLANE_TOKEN";
  auto strip = [](std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ')) s.pop_back();
    return s;
  };
  if (!request_plane_token_file.empty()) {
    std::ifstream in(request_plane_token_file, std::ios::binary);
    if (!in) {
      return invalid_argument("cannot read the request-plane token file " +
                              request_plane_token_file);
    }
    std::ostringstream ss;
    ss << in.rdbuf();
    std::string token = strip(ss.str());
    if (token.empty()) {
      return invalid_argument("the request-plane token file " + request_plane_token_file +
                              " is empty");
    }
    return token;
  }
  if (const char* v = std::getenv(kEnv); v != nullptr) {
    std::string token = strip(v);
    if (token.empty()) return invalid_argument(std::string(kEnv) + " is set but empty");
    return token;
  }
  return std::string();
}

Result<std::unique_ptr<runtime::Discovery>> RuntimeFlags::make_discovery() const {
  if (discovery == "memory") {
    return std::unique_ptr<runtime::Discovery>(
        std::make_unique<runtime::MemoryDiscovery>(runtime::MemoryDiscovery::make_store()));
  }
  runtime::EtcdOptions o;
  o.endpoints = runtime::parse_etcd_endpoints(etcd_endpoints);
  o.lease_ttl_s = lease_ttl_s;
  o.username = etcd_user;
  o.password = etcd_password;
  o.ca_file = etcd_ca;
  o.cert_file = etcd_cert;
  o.key_file = etcd_key;
  TURBINE_ASSIGN_OR_RETURN(auto d, runtime::EtcdDiscovery::create(o));
  return std::unique_ptr<runtime::Discovery>(std::move(d));
}

Result<std::shared_ptr<runtime::EventPlane>> RuntimeFlags::make_event_plane() const {
  if (nats_url.empty()) return std::shared_ptr<runtime::EventPlane>();
  runtime::NatsOptions o;
  o.url = nats_url;
  o.user = nats_user;
  o.password = nats_password;
  o.token = nats_token;
  o.creds_file = nats_creds;
  o.ca_file = nats_ca;
  TURBINE_ASSIGN_OR_RETURN(auto p, runtime::make_nats_event_plane(o));
  return std::shared_ptr<runtime::EventPlane>(std::move(p));
}

Result<std::unique_ptr<serving::InstanceConnector>> RuntimeFlags::make_connector(
    int pool_size, int n_threads, const std::shared_ptr<runtime::EventPlane>& plane) const {
  if (request_plane == "nats") {
    if (!plane) return invalid_argument("--request-plane nats needs --nats-url", "request_plane");
    return std::unique_ptr<serving::InstanceConnector>(
        std::make_unique<serving::MessageConnector>(plane, std::chrono::milliseconds(5000)));
  }
  TURBINE_ASSIGN_OR_RETURN(std::string token, request_plane_token());
  runtime::RemoteEngineOptions base;
  base.token = std::move(token);
  base.silence_timeout =
      std::chrono::milliseconds(static_cast<int64_t>(request_plane_silence_timeout_s * 1000));
  // A few pings per timeout, so that one late pong is not silence.
  base.ping_interval = std::min(std::chrono::milliseconds(1000), base.silence_timeout / 3);
  return std::unique_ptr<serving::InstanceConnector>(
      std::make_unique<serving::TcpConnector>(pool_size, n_threads, std::move(base)));
}

}  // namespace turbine::cli
