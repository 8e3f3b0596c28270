// EtcdDiscovery: Discovery over etcd v3's JSON gateway (`/v3/...`, etcd >= 3.4) with libcurl.
//
// One lease per process (TTL `lease_ttl_s`, kept alive every TTL/3 by a background thread); its
// id is this process's instance id. Keys and values travel base64-encoded; int64 fields come as
// JSON strings; fields holding default values are omitted (a PUT watch event has no "type").
//
// Outages: while etcd is unreachable, calls fail with kUnavailable and everything known stays
// as it was (watchers get no events, so the frontend keeps routing to the workers it knows). The
// keep-alive thread retries every second; if the lease is gone when etcd answers again (expired,
// or a fresh etcd), it grants a new lease and puts every registered key again. instance_id()
// stays the first lease's id (it is part of the keys). Each watch runs one thread: list +
// streaming `/v3/watch` from the listed revision; when the stream breaks it lists again and
// delivers the difference to its callback (Added for new or changed keys, Removed for gone ones).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "runtime/discovery.h"

namespace turbine::runtime {

struct EtcdOptions {
  std::vector<std::string> endpoints = {"http://127.0.0.1:2379"};  // tried in order
  int lease_ttl_s = 10;
  std::string username;  // etcd auth (both or neither)
  std::string password;
  std::string ca_file;  // TLS (https:// endpoints)
  std::string cert_file;
  std::string key_file;
  int request_timeout_ms = 3000;

  Status validate() const;
};

// Splits "URL[,URL...]" into endpoints (a bare host:port gets http://).
std::vector<std::string> parse_etcd_endpoints(const std::string& list);

class EtcdDiscovery final : public Discovery {
 public:
  // Grants the lease; kUnavailable if no endpoint answers.
  static Result<std::unique_ptr<EtcdDiscovery>> create(EtcdOptions options);
  ~EtcdDiscovery() override;

  uint64_t instance_id() const override;
  Status register_key(const std::string& key, const std::string& value) override;
  Status unregister_key(const std::string& key) override;
  Result<std::vector<KeyValue>> list(const std::string& prefix) override;
  Result<std::unique_ptr<WatchHandle>> watch(const std::string& prefix,
                                             WatchCallback on_event) override;
  void shutdown() override;

  // The lease currently held (changes after a re-grant); for tests and logs.
  uint64_t current_lease() const;

  struct Impl;

 private:
  explicit EtcdDiscovery(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace turbine::runtime
