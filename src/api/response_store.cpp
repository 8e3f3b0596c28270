#include "api/response_store.h"

#include "api/json_writer.h"

namespace turbine::api {
namespace {

size_t approx_bytes(const StoredResponse& r) {
  size_t n = sizeof(StoredResponse) + r.id.size() + r.model.size() + r.response_json.size();
  for (const ChatMessage& m : r.conversation) {
    n += sizeof(ChatMessage) + m.role.size() + m.content.size() + m.tool_calls_json.size();
    if (m.tool_call_id) n += m.tool_call_id->size();
    if (m.reasoning_content) n += m.reasoning_content->size();
    if (m.name) n += m.name->size();
  }
  return n;
}

}  // namespace

ResponseStore::ResponseStore(Options options, Clock clock)
    : options_(options), clock_(std::move(clock)) {}

void ResponseStore::remove_locked(std::unordered_map<std::string, Entry>::iterator it) {
  bytes_ -= it->second.bytes;
  age_.erase(it->second.age);
  entries_.erase(it);
}

void ResponseStore::evict_locked(std::chrono::steady_clock::time_point now) {
  // age_ is in insertion order, so expired entries are at its front.
  while (!age_.empty()) {
    auto it = entries_.find(age_.front());
    const bool expired = now - it->second.stored_at >= options_.ttl;
    const bool over = entries_.size() > options_.max_entries || bytes_ > options_.max_bytes;
    if (!expired && !over) break;
    remove_locked(it);
  }
}

void ResponseStore::put(StoredResponse response) {
  const auto now = clock_();
  const size_t bytes = approx_bytes(response);
  // One response larger than the whole budget is not kept (rather than flushing the store).
  if (bytes > options_.max_bytes) return;
  std::string id = response.id;
  auto value = std::make_shared<const StoredResponse>(std::move(response));
  std::lock_guard<std::mutex> lock(mu_);
  if (auto old = entries_.find(id); old != entries_.end()) remove_locked(old);
  age_.push_back(id);
  Entry entry{std::move(value), now, bytes, std::prev(age_.end())};
  entries_.emplace(std::move(id), std::move(entry));
  bytes_ += bytes;
  evict_locked(now);
}

std::shared_ptr<const StoredResponse> ResponseStore::get(std::string_view id) {
  std::lock_guard<std::mutex> lock(mu_);
  evict_locked(clock_());
  auto it = entries_.find(std::string(id));
  if (it == entries_.end()) return nullptr;
  return it->second.value;
}

bool ResponseStore::erase(std::string_view id) {
  std::lock_guard<std::mutex> lock(mu_);
  evict_locked(clock_());
  auto it = entries_.find(std::string(id));
  if (it == entries_.end()) return false;
  remove_locked(it);
  return true;
}

size_t ResponseStore::size() {
  std::lock_guard<std::mutex> lock(mu_);
  evict_locked(clock_());
  return entries_.size();
}

size_t ResponseStore::bytes() {
  std::lock_guard<std::mutex> lock(mu_);
  evict_locked(clock_());
  return bytes_;
}

Status apply_previous_response(ResponsesRequest& request, ResponseStore& store) {
  if (!request.previous_response_id) return Status::ok();
  std::shared_ptr<const StoredResponse> previous = store.get(*request.previous_response_id);
  if (previous == nullptr) {
    return invalid_argument(
        "Previous response with id '" + *request.previous_response_id + "' not found.",
        "previous_response_id");
  }
  request.previous_messages = previous->conversation;
  std::vector<ChatMessage>& messages = request.chat.messages;
  const auto at = messages.begin() + (request.instructions ? 1 : 0);
  messages.insert(at, previous->conversation.begin(), previous->conversation.end());
  return Status::ok();
}

std::string response_deleted_json(std::string_view id) {
  std::string out = R"({"id":)";
  append_json_string(out, id);
  out += R"(,"object":"response","deleted":true})";
  return out;
}

Status response_not_found(std::string_view id) {
  return not_found("Response with id '" + std::string(id) + "' not found.", "response_id");
}

StoredResponse stored_response(const ResponsesRequest& request, const ResponsesEncoder& encoder) {
  StoredResponse r;
  r.id = encoder.id();
  r.model = request.chat.model;
  r.response_json = encoder.response_json();
  r.conversation = request.previous_messages;
  r.conversation.insert(r.conversation.end(), request.input_messages.begin(),
                        request.input_messages.end());
  std::vector<ChatMessage> output = encoder.output_messages();
  r.conversation.insert(r.conversation.end(), output.begin(), output.end());
  return r;
}

bool remember_response(ResponseStore& store, const ResponsesRequest& request,
                       const ResponsesEncoder& encoder) {
  if (!request.store) return false;
  store.put(stored_response(request, encoder));
  return true;
}

}  // namespace turbine::api
