// Ports, etcd (a lease round trip) and NATS (publish/subscribe round trip, JetStream).
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include <fmt/format.h>
#include <boost/json.hpp>

#include "doctor/doctor.h"
#include "doctor/probes.h"
#include "runtime/etcd_discovery.h"
#ifdef TURBINE_HAVE_NATS
#include <nats/nats.h>
#endif

namespace turbine::doctor {
namespace {

using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Binds host:port like a server would (SO_REUSEADDR, so TIME_WAIT leftovers don't count);
// empty when it could, else the reason.
std::string try_bind(const std::string& host, uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string p = std::to_string(port);
  if (int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), p.c_str(), &hints, &res);
      rc != 0)
    return std::string("cannot resolve ") + host + ": " + ::gai_strerror(rc);
  std::string err;
  const int fd = ::socket(res->ai_family, res->ai_socktype, res->ai_protocol);
  if (fd < 0) {
    err = std::strerror(errno);
  } else {
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd, res->ai_addr, res->ai_addrlen) != 0 || ::listen(fd, 1) != 0)
      err = std::strerror(errno);
    ::close(fd);
  }
  ::freeaddrinfo(res);
  return err;
}

}  // namespace

CheckResult check_ports(const DoctorOptions& o) {
  CheckResult c{"net.ports", "Ports free", CheckStatus::kPass, "", {}};
  if (o.ports.empty()) {
    c.status = CheckStatus::kSkip;
    c.summary = "no --port given";
    return c;
  }
  boost::json::array free_ports, busy;
  std::string problems;
  for (uint16_t port : o.ports) {
    const std::string err = try_bind(o.host, port);
    if (err.empty()) {
      free_ports.push_back(port);
    } else {
      busy.push_back(boost::json::object{{"port", port}, {"error", err}});
      problems += fmt::format("{}{}:{} ({})", problems.empty() ? "" : ", ", o.host, port, err);
    }
  }
  c.details["host"] = o.host;
  c.details["free"] = std::move(free_ports);
  c.details["in_use"] = std::move(busy);
  if (!problems.empty()) {
    c.status = CheckStatus::kFail;
    c.summary = "cannot bind " + problems;
  } else {
    std::string list;
    for (uint16_t p : o.ports) list += (list.empty() ? "" : ", ") + std::to_string(p);
    c.summary = fmt::format("{} free on {}", list, o.host);
  }
  return c;
}

CheckResult check_etcd(const DoctorOptions& o) {
  CheckResult c{"etcd.lease", "etcd", CheckStatus::kPass, "", {}};
  if (o.etcd_endpoints.empty()) {
    c.status = CheckStatus::kSkip;
    c.summary = "no --etcd-endpoints given";
    return c;
  }
  runtime::EtcdOptions eo;
  eo.endpoints = runtime::parse_etcd_endpoints(o.etcd_endpoints);
  eo.lease_ttl_s = 5;
  eo.request_timeout_ms = o.timeout_ms;
  c.details["endpoints"] = o.etcd_endpoints;
  // Grant a lease, put a key under it, read it back, revoke: what every worker does at start.
  const auto t0 = Clock::now();
  auto d = runtime::EtcdDiscovery::create(eo);
  if (!d) {
    c.status = CheckStatus::kFail;
    c.summary = "etcd unreachable at " + o.etcd_endpoints + ": " + d.status().message();
    return c;
  }
  const std::string key = fmt::format("v1/doctor/{:x}", (*d)->instance_id());
  Status st = (*d)->register_key(key, "turbine doctor");
  Result<std::vector<runtime::KeyValue>> listed =
      st.is_ok() ? (*d)->list(key) : Result<std::vector<runtime::KeyValue>>(st);
  (*d)->shutdown();  // revokes the lease: the key goes with it
  const double ms = ms_since(t0);
  c.details["lease_id"] = fmt::format("{:x}", (*d)->instance_id());
  c.details["round_trip_ms"] = ms;
  if (!listed) {
    c.status = CheckStatus::kFail;
    c.summary = "etcd granted a lease but a put/get under it failed: " + listed.status().message();
  } else if (listed->size() != 1 || (*listed)[0].value != "turbine doctor") {
    c.status = CheckStatus::kFail;
    c.summary = "etcd did not return the key just put under the lease";
  } else {
    c.summary = fmt::format("lease granted, key put and read back, lease revoked in {:.1f} ms", ms);
  }
  return c;
}

std::vector<CheckResult> check_nats(const DoctorOptions& o) {
  CheckResult pubsub{"nats.pubsub", "NATS publish/subscribe", CheckStatus::kPass, "", {}};
  CheckResult js{"nats.jetstream", "NATS JetStream", CheckStatus::kPass, "", {}};
  if (o.nats_url.empty()) {
    pubsub.status = js.status = CheckStatus::kSkip;
    pubsub.summary = js.summary = "no --nats-url given";
    return {pubsub, js};
  }
#ifndef TURBINE_HAVE_NATS
  pubsub.status = js.status = CheckStatus::kFail;
  pubsub.summary = js.summary = "this turbine was built without libnats (libnats-dev)";
  return {pubsub, js};
#else
  pubsub.details["url"] = o.nats_url;
  natsOptions* opts = nullptr;
  natsConnection* nc = nullptr;
  natsOptions_Create(&opts);
  natsOptions_SetURL(opts, o.nats_url.c_str());
  natsOptions_SetTimeout(opts, o.timeout_ms);
  natsOptions_SetMaxReconnect(opts, 0);
  natsOptions_SetAllowReconnect(opts, false);
  const auto t0 = Clock::now();
  natsStatus s = natsConnection_Connect(&nc, opts);
  natsOptions_Destroy(opts);
  if (s != NATS_OK) {
    pubsub.status = js.status = CheckStatus::kFail;
    pubsub.summary = fmt::format("cannot connect to {}: {}", o.nats_url, natsStatus_GetText(s));
    js.summary = "NATS unreachable";
    return {pubsub, js};
  }
  const double connect_ms = ms_since(t0);
  const int64_t max_payload = natsConnection_GetMaxPayload(nc);
  pubsub.details["connect_ms"] = connect_ms;
  pubsub.details["max_payload_bytes"] = max_payload;
  // Round trip: subscribe to a fresh inbox, publish to it, wait for the message.
  natsInbox* inbox = nullptr;
  natsSubscription* sub = nullptr;
  natsMsg* msg = nullptr;
  natsInbox_Create(&inbox);
  const auto t1 = Clock::now();
  s = natsConnection_SubscribeSync(&sub, nc, inbox);
  if (s == NATS_OK) s = natsConnection_PublishString(nc, inbox, "turbine doctor");
  if (s == NATS_OK) s = natsConnection_Flush(nc);
  if (s == NATS_OK) s = natsSubscription_NextMsg(&msg, sub, o.timeout_ms);
  const double rt_ms = ms_since(t1);
  const bool same = s == NATS_OK && msg && natsMsg_GetDataLength(msg) == 14 &&
                    std::memcmp(natsMsg_GetData(msg), "turbine doctor", 14) == 0;
  if (msg) natsMsg_Destroy(msg);
  if (sub) natsSubscription_Destroy(sub);
  natsInbox_Destroy(inbox);
  pubsub.details["round_trip_ms"] = rt_ms;
  if (!same) {
    pubsub.status = CheckStatus::kFail;
    pubsub.summary = fmt::format(
        "connected, but a message published to an inbox did not come "
        "back: {}",
        natsStatus_GetText(s));
  } else {
    pubsub.summary = fmt::format(
        "connected in {:.1f} ms; publish/subscribe round trip {:.2f} ms; "
        "max payload {}",
        connect_ms, rt_ms, format_bytes(max_payload));
    // KV events of a long prefill carry thousands of block hashes in one message.
    if (max_payload < (int64_t{8} << 20)) {
      pubsub.status = CheckStatus::kWarn;
      pubsub.summary += " (under 8 MiB: large KV event batches may be refused; set max_payload)";
    }
  }
  // JetStream: the account info request fails with "JetStream not enabled" when it is off.
  jsCtx* jctx = nullptr;
  jsAccountInfo* ai = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = o.timeout_ms;
  s = natsConnection_JetStream(&jctx, nc, &jo);
  if (s == NATS_OK) s = js_GetAccountInfo(&ai, jctx, &jo, &jerr);
  if (s == NATS_OK && ai) {
    js.details["enabled"] = true;
    js.details["streams"] = static_cast<int64_t>(ai->Streams);
    js.details["memory_bytes"] = static_cast<int64_t>(ai->Memory);
    js.details["storage_bytes"] = static_cast<int64_t>(ai->Store);
    js.summary = fmt::format("enabled ({} streams)", ai->Streams);
    jsAccountInfo_Destroy(ai);
  } else {
    js.details["enabled"] = false;
    js.details["error_code"] = static_cast<int64_t>(jerr);
    js.status = CheckStatus::kFail;
    const char* last = nats_GetLastError(nullptr);
    js.summary = fmt::format(
        "JetStream is not available on {}: {}{}; start nats-server with "
        "--jetstream (deploy/docker/nats-server.conf)",
        o.nats_url, natsStatus_GetText(s), last && *last ? fmt::format(" ({})", last) : "");
  }
  if (jctx) jsCtx_Destroy(jctx);
  natsConnection_Close(nc);
  natsConnection_Destroy(nc);
  return {pubsub, js};
#endif
}

}  // namespace turbine::doctor
