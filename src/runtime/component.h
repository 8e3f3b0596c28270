// The component model: namespace / component / endpoint / instance, as in NVIDIA Dynamo.
//
// An instance is one process serving one endpoint; its id is the process's discovery lease id
// (etcd lease, hex in keys). EVERY discovery key and event-plane subject is built here, so the
// layout lives in one place:
//   v1/instances/{ns}/{component}/{endpoint}/{instance:x}   InstanceRecord JSON
//   v1/mdc/{ns}/{component}/{endpoint}/{instance:x}         ModelCard JSON
//   {ns}.{component}.kv_events                              KV events (event plane)
//   {ns}.{component}.load                                   per-worker load (event plane)
//   {ns}.{component}.{endpoint}.{instance:x}                requests to one instance (NATS
//                                                           request plane)
//   _INBOX.{ns}.{nonce:x}                                   one client's replies (NATS)
//   v1/planner/{ns}/{model}/{pool}                          the planner's decision (virtual
//                                                           connector, src/planner)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace turbine::runtime {

inline constexpr const char* kDefaultNamespace = "turbine";
inline constexpr const char* kWorkerComponent = "backend";
// `turbine worker --worker-type prefill` registers here (disaggregated serving).
inline constexpr const char* kPrefillComponent = "prefill";
inline constexpr const char* kGenerateEndpoint = "generate";

struct EndpointId {
  std::string ns = kDefaultNamespace;
  std::string component = kWorkerComponent;
  std::string endpoint = kGenerateEndpoint;
  bool operator==(const EndpointId&) const = default;
  // Names are non-empty and use [A-Za-z0-9_-] (they appear in keys and NATS subjects).
  Status validate() const;
};

std::string instance_key(const EndpointId& ep, uint64_t instance_id);
std::string model_card_key(const EndpointId& ep, uint64_t instance_id);
// Every instance / model card of a namespace.
std::string instances_prefix(std::string_view ns);
std::string model_cards_prefix(std::string_view ns);

struct ParsedKey {
  EndpointId endpoint;
  uint64_t instance_id = 0;
};
// Parses a key built by instance_key / model_card_key; nullopt for anything else.
std::optional<ParsedKey> parse_instance_key(std::string_view key);
std::optional<ParsedKey> parse_model_card_key(std::string_view key);

std::string kv_events_subject(std::string_view ns, std::string_view component);
std::string load_subject(std::string_view ns, std::string_view component);
// Where an instance takes requests and cancels on the NATS request plane.
std::string request_subject(const EndpointId& ep, uint64_t instance_id);
// A request-plane client's reply inbox (`nonce`: unique per client).
std::string inbox_subject(std::string_view ns, uint64_t nonce);
// Where `turbine planner --connector virtual` writes a pool's wanted replica count.
std::string planner_decision_key(std::string_view ns, std::string_view model,
                                 std::string_view pool);

// What v1/instances/... holds: where to reach the instance's request plane.
struct InstanceRecord {
  static constexpr int kVersion = 1;
  EndpointId endpoint;
  uint64_t instance_id = 0;
  std::string address;  // host:port of the TCP request plane
  bool operator==(const InstanceRecord&) const = default;
};
std::string to_json(const InstanceRecord& r);
Result<InstanceRecord> instance_record_from_json(std::string_view json);

std::string hex_id(uint64_t id);

}  // namespace turbine::runtime
