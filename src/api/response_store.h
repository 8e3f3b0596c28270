// The bounded in-memory store behind the Responses API's previous_response_id and
// GET/DELETE /v1/responses/{id}. Thread-safe (see ResponseStore).
#pragma once

#include <chrono>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "api/responses.h"

namespace turbine::api {

struct StoredResponse {
  std::string id;
  std::string model;
  // The whole conversation without instructions: the previous turns, this turn's input and the
  // output as assistant/tool-call messages. A follow-up continues from it.
  std::vector<ChatMessage> conversation;
  std::string response_json;  // the final response object (GET)
};

// Bounded in-memory store with a TTL. Entries expire `ttl` after they were stored; when over
// `max_entries` or `max_bytes` the oldest go first (a response alone larger than `max_bytes`
// is not stored). Thread-safe: one mutex guards the map and
// the age list (held for map operations only; values are immutable snapshots shared out).
class ResponseStore {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  struct Options {
    size_t max_entries = 10000;
    size_t max_bytes = 256u << 20;
    std::chrono::seconds ttl{3600};
  };
  explicit ResponseStore(Options options, Clock clock = std::chrono::steady_clock::now);

  void put(StoredResponse response);
  // nullptr when unknown or expired.
  std::shared_ptr<const StoredResponse> get(std::string_view id);
  // false when unknown or expired.
  bool erase(std::string_view id);
  size_t size();
  size_t bytes();

 private:
  struct Entry {
    std::shared_ptr<const StoredResponse> value;
    std::chrono::steady_clock::time_point stored_at;
    size_t bytes = 0;
    std::list<std::string>::iterator age;  // position in age_ (oldest first)
  };
  void evict_locked(std::chrono::steady_clock::time_point now);
  void remove_locked(std::unordered_map<std::string, Entry>::iterator it);

  const Options options_;
  const Clock clock_;
  std::mutex mu_;  // guards everything below
  std::unordered_map<std::string, Entry> entries_;
  std::list<std::string> age_;
  size_t bytes_ = 0;
};

// previous_response_id: puts the stored conversation before this turn's input (after the
// instructions). Unknown or expired id: kInvalidArgument on previous_response_id (400 with
// code "previous_response_not_found", as OpenAI).
Status apply_previous_response(ResponsesRequest& request, ResponseStore& store);

// {"id","object":"response","deleted":true}
std::string response_deleted_json(std::string_view id);
// For GET/DELETE of an unknown id: kNotFound "Response with id '...' not found."
Status response_not_found(std::string_view id);

// What to store once a response is finished (store: true): its conversation is the previous
// turns + this turn's input + the encoder's output.
StoredResponse stored_response(const ResponsesRequest& request, const ResponsesEncoder& encoder);
// Puts the finished response in the store unless the request said `store: false`; returns
// whether it stored it.
bool remember_response(ResponseStore& store, const ResponsesRequest& request,
                       const ResponsesEncoder& encoder);

}  // namespace turbine::api
