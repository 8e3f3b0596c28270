#include "runtime/kv_transfer_ucx.h"

#include <utility>

#ifdef TURBINE_HAVE_UCX
#include <netdb.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <ucp/api/ucp.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <functional>
#include <map>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

#include <spdlog/spdlog.h>

#include "runtime/request_plane.h"
#include "runtime/wire.h"
#endif

namespace turbine::runtime {

std::optional<std::string> ucx_host_port(std::string_view address) {
  if (!address.starts_with(kUcxScheme)) return std::nullopt;
  return std::string(address.substr(kUcxScheme.size()));
}

DispatchKvTransfer::DispatchKvTransfer(std::shared_ptr<engine::KvTransfer> tcp,
                                       UcxKvTransferOptions ucx_options)
    : tcp_(std::move(tcp)), ucx_options_(ucx_options) {}

Result<engine::KvTransfer*> DispatchKvTransfer::ucx() {
  std::lock_guard lock(mu_);
  if (!tried_) {
    tried_ = true;
    auto made = UcxKvTransfer::create(ucx_options_);
    if (made.has_value())
      ucx_ = std::move(made).value();
    else
      ucx_error_ = made.status();
  }
  if (!ucx_) return ucx_error_;
  return ucx_.get();
}

void DispatchKvTransfer::fetch(const engine::KvTransferMeta& meta, int first_block, int n_blocks,
                               engine::KvBytesCallback done) {
  if (!meta.address.starts_with(kUcxScheme))
    return tcp_->fetch(meta, first_block, n_blocks, std::move(done));
  auto t = ucx();
  if (!t.has_value()) return done(t.status());
  (*t)->fetch(meta, first_block, n_blocks, std::move(done));
}

void DispatchKvTransfer::release(const engine::KvTransferMeta& meta) {
  if (!meta.address.starts_with(kUcxScheme)) return tcp_->release(meta);
  if (auto t = ucx(); t.has_value()) (*t)->release(meta);
}

std::vector<engine::KvTransportStats> DispatchKvTransfer::transport_stats() const {
  std::vector<engine::KvTransportStats> out = tcp_->transport_stats();
  std::lock_guard lock(mu_);
  if (ucx_) engine::add_transport_stats(out, ucx_->transport_stats());
  return out;
}

std::vector<engine::KvTransportStats> UcxKvTransfer::transport_stats() const {
  return {stats()};
}

#ifndef TURBINE_HAVE_UCX

namespace {
Status no_ucx() {
  return unimplemented(
      "this build has no UCX (install libucx-dev and rebuild): --kv-transport ucx is "
      "unavailable");
}
}  // namespace

bool ucx_built() {
  return false;
}
struct UcxKvServer::Impl {};
struct UcxKvTransfer::Impl {};
UcxKvServer::UcxKvServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
UcxKvServer::~UcxKvServer() = default;
Result<std::unique_ptr<UcxKvServer>> UcxKvServer::start(std::shared_ptr<engine::KvTransferSource>,
                                                        UcxKvServerOptions) {
  return no_ucx();
}
uint16_t UcxKvServer::port() const {
  return 0;
}
void UcxKvServer::stop() {}
UcxKvTransfer::UcxKvTransfer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
UcxKvTransfer::~UcxKvTransfer() = default;
Result<std::unique_ptr<UcxKvTransfer>> UcxKvTransfer::create(UcxKvTransferOptions) {
  return no_ucx();
}
void UcxKvTransfer::fetch(const engine::KvTransferMeta&, int, int, engine::KvBytesCallback done) {
  done(no_ucx());
}
void UcxKvTransfer::release(const engine::KvTransferMeta&) {}
engine::KvTransportStats UcxKvTransfer::stats() const {
  return {"ucx"};
}

#else  // TURBINE_HAVE_UCX

bool ucx_built() {
  return true;
}

namespace {

// Active message ids (both directions share one namespace per worker).
constexpr unsigned kAmPull = 0x7401, kAmRelease = 0x7402, kAmData = 0x7403;

// Pull and release headers are followed by the request-plane token (its bytes, up to the
// header's end); the server compares it with its own.
struct PullHeader {
  uint64_t req_id = 0, transfer_id = 0;
  int32_t first = 0, n = 0;
};
struct ReleaseHeader {
  uint64_t transfer_id = 0;
};
constexpr size_t kMaxTokenBytes = 1024;
// A reply: {u64 req_id, u32 status code, u32 message length, message}; the bytes are the data.
constexpr size_t kDataHead = 16;
constexpr size_t kMaxMessage = 200;

Status ucs_error(const std::string& what, ucs_status_t s) {
  return {StatusCode::kUnavailable, what + ": " + ucs_status_string(s)};
}

// host, port -> a socket address (numeric or a name; the name lookup may block briefly).
Result<std::pair<sockaddr_storage, socklen_t>> resolve(const std::string& host, uint16_t port_num,
                                                       bool passive) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  if (passive) hints.ai_flags = AI_PASSIVE;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(port_num);
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0 || !res)
    return Status{StatusCode::kUnavailable, "cannot resolve " + host + ": " + ::gai_strerror(rc)};
  std::pair<sockaddr_storage, socklen_t> out{};
  std::memcpy(&out.first, res->ai_addr, res->ai_addrlen);
  out.second = res->ai_addrlen;
  ::freeaddrinfo(res);
  return out;
}

// A zeroed buffer of n bytes whose pages may be transparent huge pages: first touch of fresh
// 4 KiB pages costs a fault each (on virtualised hosts the dominant cost of a large fetch).
void size_buffer(std::string& s, size_t n) {
  s.reserve(n);
#ifdef MADV_HUGEPAGE
  constexpr uintptr_t kHuge = uintptr_t{2} << 20;
  const auto begin = reinterpret_cast<uintptr_t>(s.data());
  const uintptr_t a = (begin + kHuge - 1) & ~(kHuge - 1), e = (begin + n) & ~(kHuge - 1);
  if (e > a) ::madvise(reinterpret_cast<void*>(a), e - a, MADV_HUGEPAGE);  // a hint
#endif
  s.resize(n);
}

// One UCP context + worker and the thread that drives it. Commands posted from other threads
// run on that thread; posting after stop() drops the command (returns false).
class Progress {
 public:
  ~Progress() { destroy(); }

  Status init() {
    ucp_config_t* config = nullptr;
    if (ucs_status_t s = ucp_config_read(nullptr, nullptr, &config); s != UCS_OK)
      return ucs_error("UCX configuration", s);
    ucp_params_t params{};
    params.field_mask = UCP_PARAM_FIELD_FEATURES;
    params.features = UCP_FEATURE_AM | UCP_FEATURE_WAKEUP;
    ucs_status_t s = ucp_init(&params, config, &context_);
    ucp_config_release(config);
    if (s != UCS_OK) {
      context_ = nullptr;
      return ucs_error("UCX init", s);
    }
    ucp_worker_params_t wp{};
    wp.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
    wp.thread_mode = UCS_THREAD_MODE_SINGLE;
    if (s = ucp_worker_create(context_, &wp, &worker_); s != UCS_OK) {
      worker_ = nullptr;
      return ucs_error("UCX worker", s);
    }
    if (s = ucp_worker_get_efd(worker_, &efd_); s != UCS_OK)
      return ucs_error("UCX worker wake-up", s);
    return Status::ok();
  }

  ucp_worker_h worker() const { return worker_; }

  // `tick` runs every loop (≤ 10 ms apart); `cleanup` once, on the thread, before it exits.
  // While `busy()` the thread polls the worker without sleeping: a rendezvous in flight moves on
  // progress calls, not only on wake-up events (sleeping between them costs 10x the bandwidth).
  void run(std::function<void()> tick, std::function<void()> cleanup, std::function<bool()> busy) {
    tick_ = std::move(tick);
    busy_ = std::move(busy);
    cleanup_ = std::move(cleanup);
    thread_ = std::thread([this] { loop(); });
  }

  bool post(std::function<void()> fn) {
    std::lock_guard lock(mu_);
    if (stopped_ || !worker_) return false;
    queue_.push_back(std::move(fn));
    ucp_worker_signal(worker_);
    return true;
  }

  // Runs the cleanup on the thread and joins it. Idempotent.
  void stop() {
    {
      std::lock_guard lock(mu_);
      if (stopped_) return;
      stopped_ = true;
      if (worker_) ucp_worker_signal(worker_);
    }
    if (thread_.joinable()) thread_.join();
    std::lock_guard lock(mu_);
    queue_.clear();
  }

  // Drives the worker until `done()` or `limit` passes (on the progress thread).
  void progress_until(const std::function<bool()>& done, std::chrono::milliseconds limit) {
    const auto end = std::chrono::steady_clock::now() + limit;
    while (!done() && std::chrono::steady_clock::now() < end) ucp_worker_progress(worker_);
  }

 private:
  void loop() {
    for (;;) {
      while (ucp_worker_progress(worker_) != 0) {
      }
      std::vector<std::function<void()>> batch;
      bool stopping = false;
      {
        std::lock_guard lock(mu_);
        batch.swap(queue_);
        stopping = stopped_;
      }
      for (auto& fn : batch) fn();
      if (stopping) break;
      if (tick_) tick_();
      if (!batch.empty()) continue;
      if (busy_ && busy_()) {
        std::this_thread::yield();
        continue;
      }
      const ucs_status_t s = ucp_worker_arm(worker_);
      if (s == UCS_ERR_BUSY) continue;
      pollfd p{efd_, POLLIN, 0};
      ::poll(&p, 1, 10);
    }
    if (cleanup_) cleanup_();
  }

  void destroy() {
    stop();
    if (worker_) ucp_worker_destroy(worker_);
    if (context_) ucp_cleanup(context_);
    worker_ = nullptr;
    context_ = nullptr;
  }

  ucp_context_h context_ = nullptr;
  ucp_worker_h worker_ = nullptr;
  int efd_ = -1;
  std::thread thread_;
  std::function<void()> tick_, cleanup_;
  std::function<bool()> busy_;
  std::mutex mu_;
  std::vector<std::function<void()>> queue_;
  bool stopped_ = false;
};

// An AM send whose header (and data owner) live until UCX is done with them.
struct SendCtx {
  std::string header;
  std::string data;
  int* in_flight = nullptr;  // counts the sends not yet complete (progress thread only)
};

void send_done(void* request, ucs_status_t, void* user_data) {
  auto* ctx = static_cast<SendCtx*>(user_data);
  if (ctx->in_flight) --*ctx->in_flight;
  delete ctx;
  ucp_request_free(request);
}

// Sends; false if UCX refused at once. The context is freed either way.
bool send_am(ucp_ep_h ep, unsigned id, std::unique_ptr<SendCtx> ctx, uint32_t flags) {
  ucp_request_param_t p{};
  p.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
  p.cb.send = send_done;
  p.user_data = ctx.get();
  if (flags != 0) {
    p.op_attr_mask |= UCP_OP_ATTR_FIELD_FLAGS;
    p.flags = flags;
  }
  ucs_status_ptr_t r = ucp_am_send_nbx(ep, id, ctx->header.data(), ctx->header.size(),
                                       ctx->data.data(), ctx->data.size(), &p);
  if (r == nullptr) return true;  // done at once: no callback
  if (UCS_PTR_IS_ERR(r)) return false;
  if (ctx->in_flight) ++*ctx->in_flight;
  (void)ctx.release();  // send_done frees it
  return true;
}

// Force-closes `eps` and drives the worker until the closes complete (bounded).
void close_all(Progress& progress, const std::vector<ucp_ep_h>& eps) {
  std::vector<void*> reqs;
  for (ucp_ep_h ep : eps) {
    ucp_request_param_t p{};
    p.op_attr_mask = UCP_OP_ATTR_FIELD_FLAGS;
    p.flags = UCP_EP_CLOSE_FLAG_FORCE;
    ucs_status_ptr_t r = ucp_ep_close_nbx(ep, &p);
    if (r != nullptr && !UCS_PTR_IS_ERR(r)) reqs.push_back(r);
  }
  progress.progress_until(
      [&] {
        return std::all_of(reqs.begin(), reqs.end(),
                           [](void* r) { return ucp_request_check_status(r) != UCS_INPROGRESS; });
      },
      std::chrono::milliseconds(2000));
  for (void* r : reqs)
    if (ucp_request_check_status(r) != UCS_INPROGRESS) ucp_request_free(r);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Server

struct UcxKvServer::Impl {
  std::shared_ptr<Progress> progress = std::make_shared<Progress>();
  std::shared_ptr<engine::KvTransferSource> source;
  std::string token;      // immutable after start()
  uint64_t rejected = 0;  // progress thread
  ucp_listener_h listener = nullptr;
  std::set<ucp_ep_h> eps;  // progress thread only (after start)
  int sends = 0;           // replies in flight (progress thread)
  uint16_t port = 0;

  static void on_ep_error(void* arg, ucp_ep_h ep, ucs_status_t) {
    auto* self = static_cast<Impl*>(arg);
    if (self->eps.erase(ep) == 0) return;
    // Closed outside the callback, on a later loop turn.
    self->progress->post([self, ep] { close_all(*self->progress, {ep}); });
  }

  static void on_conn(ucp_conn_request_h req, void* arg) {
    auto* self = static_cast<Impl*>(arg);
    ucp_ep_params_t ep{};
    ep.field_mask = UCP_EP_PARAM_FIELD_CONN_REQUEST | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE |
                    UCP_EP_PARAM_FIELD_ERR_HANDLER;
    ep.conn_request = req;
    ep.err_mode = UCP_ERR_HANDLING_MODE_PEER;
    ep.err_handler.cb = on_ep_error;
    ep.err_handler.arg = self;
    ucp_ep_h h = nullptr;
    if (ucp_ep_create(self->progress->worker(), &ep, &h) == UCS_OK) self->eps.insert(h);
  }

  void reply(ucp_ep_h ep, uint64_t req_id, Result<std::string> bytes) {
    if (!eps.contains(ep)) return;  // the peer went away meanwhile
    auto ctx = std::make_unique<SendCtx>();
    std::string msg;
    uint32_t code = 0;
    if (bytes.has_value()) {
      ctx->data = std::move(bytes).value();
    } else {
      code = static_cast<uint32_t>(bytes.status().code());
      msg = bytes.status().message().substr(0, kMaxMessage);
    }
    const auto len = static_cast<uint32_t>(msg.size());
    ctx->header.resize(kDataHead);
    std::memcpy(ctx->header.data(), &req_id, 8);
    std::memcpy(ctx->header.data() + 8, &code, 4);
    std::memcpy(ctx->header.data() + 12, &len, 4);
    ctx->header += msg;
    ctx->in_flight = &sends;
    send_am(ep, kAmData, std::move(ctx), 0);
  }

  static ucs_status_t on_pull(void* arg, const void* header, size_t header_length, void*, size_t,
                              const ucp_am_recv_param_t* param) {
    auto* self = static_cast<Impl*>(arg);
    if (header_length < sizeof(PullHeader) || header_length > sizeof(PullHeader) + kMaxTokenBytes ||
        !(param->recv_attr & UCP_AM_RECV_ATTR_FIELD_REPLY_EP))
      return UCS_OK;
    PullHeader h;
    std::memcpy(&h, header, sizeof h);
    ucp_ep_h ep = param->reply_ep;
    if (!self->authorized(header, header_length, sizeof h)) {
      self->reply(ep, h.req_id,
                  Status(StatusCode::kUnauthenticated, "KV transfer: wrong request-plane token"));
      return UCS_OK;
    }
    // The callback runs on the engine thread: it only posts the reply to the progress thread.
    std::weak_ptr<Progress> progress = self->progress;
    self->source->read_transfer(
        h.transfer_id, h.first, h.n,
        [progress, self, ep, id = h.req_id](Result<std::string> bytes) {
          auto p = progress.lock();
          if (!p) return;
          auto shared = std::make_shared<Result<std::string>>(std::move(bytes));
          p->post([self, ep, id, shared] { self->reply(ep, id, std::move(*shared)); });
        });
    return UCS_OK;
  }

  static ucs_status_t on_release(void* arg, const void* header, size_t header_length, void*, size_t,
                                 const ucp_am_recv_param_t*) {
    auto* self = static_cast<Impl*>(arg);
    if (header_length < sizeof(ReleaseHeader) ||
        header_length > sizeof(ReleaseHeader) + kMaxTokenBytes)
      return UCS_OK;
    ReleaseHeader h;
    std::memcpy(&h, header, sizeof h);
    if (!self->authorized(header, header_length, sizeof h)) return UCS_OK;
    self->source->release_transfer(h.transfer_id);
    return UCS_OK;
  }

  // The token after a fixed header of `fixed` bytes matches ours (or we have none).
  bool authorized(const void* header, size_t length, size_t fixed) {
    if (token.empty()) return true;
    const std::string_view sent(static_cast<const char*>(header) + fixed, length - fixed);
    if (tokens_equal(sent, token)) return true;
    if (rejected++ % 1000 == 0) {
      spdlog::warn(
          "KV transfer (UCX): refused a request without the request-plane token ({} so far)",
          rejected);
    }
    return false;
  }

  void cleanup() {
    if (listener) ucp_listener_destroy(listener);
    listener = nullptr;
    close_all(*progress, std::vector<ucp_ep_h>(eps.begin(), eps.end()));
    eps.clear();
  }
};

namespace {

Status set_handler(ucp_worker_h worker, unsigned id, ucp_am_recv_callback_t cb, void* arg) {
  ucp_am_handler_param_t p{};
  p.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_CB |
                 UCP_AM_HANDLER_PARAM_FIELD_ARG;
  p.id = id;
  p.cb = cb;
  p.arg = arg;
  if (ucs_status_t s = ucp_worker_set_am_recv_handler(worker, &p); s != UCS_OK)
    return ucs_error("UCX AM handler", s);
  return Status::ok();
}

}  // namespace

UcxKvServer::UcxKvServer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

UcxKvServer::~UcxKvServer() {
  stop();
}

Result<std::unique_ptr<UcxKvServer>> UcxKvServer::start(
    std::shared_ptr<engine::KvTransferSource> source, UcxKvServerOptions options) {
  if (!source) return invalid_argument("UcxKvServer needs a KV transfer source");
  auto impl = std::make_shared<Impl>();
  impl->source = std::move(source);
  impl->token = options.token;
  TURBINE_RETURN_IF_ERROR(impl->progress->init());
  ucp_worker_h w = impl->progress->worker();
  TURBINE_RETURN_IF_ERROR(set_handler(w, kAmPull, &Impl::on_pull, impl.get()));
  TURBINE_RETURN_IF_ERROR(set_handler(w, kAmRelease, &Impl::on_release, impl.get()));
  TURBINE_ASSIGN_OR_RETURN(auto addr, resolve(options.host, options.port, true));
  ucp_listener_params_t lp{};
  lp.field_mask = UCP_LISTENER_PARAM_FIELD_SOCK_ADDR | UCP_LISTENER_PARAM_FIELD_CONN_HANDLER;
  lp.sockaddr.addr = reinterpret_cast<const sockaddr*>(&addr.first);
  lp.sockaddr.addrlen = addr.second;
  lp.conn_handler.cb = &Impl::on_conn;
  lp.conn_handler.arg = impl.get();
  if (ucs_status_t s = ucp_listener_create(w, &lp, &impl->listener); s != UCS_OK) {
    impl->listener = nullptr;
    return ucs_error("UCX listen on " + options.host + ":" + std::to_string(options.port), s);
  }
  ucp_listener_attr_t la{};
  la.field_mask = UCP_LISTENER_ATTR_FIELD_SOCKADDR;
  if (ucs_status_t s = ucp_listener_query(impl->listener, &la); s != UCS_OK) {
    ucp_listener_destroy(impl->listener);
    impl->listener = nullptr;
    return ucs_error("UCX listener query", s);
  }
  const auto* sa = reinterpret_cast<const sockaddr*>(&la.sockaddr);
  impl->port = sa->sa_family == AF_INET6
                   ? ntohs(reinterpret_cast<const sockaddr_in6*>(sa)->sin6_port)
                   : ntohs(reinterpret_cast<const sockaddr_in*>(sa)->sin_port);
  Impl* raw = impl.get();
  impl->progress->run(
      {}, [raw] { raw->cleanup(); }, [raw] { return raw->sends > 0; });
  return std::unique_ptr<UcxKvServer>(new UcxKvServer(std::move(impl)));
}

uint16_t UcxKvServer::port() const {
  return impl_->port;
}

void UcxKvServer::stop() {
  if (impl_) impl_->progress->stop();
}

// ---------------------------------------------------------------------------------------------
// Client

namespace {

struct Fetch {
  std::string address;  // host:port
  uint64_t transfer_id = 0;
  int64_t bpb = 0;
  int first = 0, n = 0, next = 0, received = 0, in_flight = 0;
  std::string bytes;
  engine::KvBytesCallback done;
  std::chrono::steady_clock::time_point t0, deadline;
  ucp_ep_h ep = nullptr;
  bool finished = false;
};

struct Pending {
  std::shared_ptr<Fetch> fetch;
  int at = 0, count = 0;
};

}  // namespace

struct UcxKvTransfer::Impl {
  UcxKvTransferOptions options;
  std::shared_ptr<Progress> progress = std::make_shared<Progress>();
  std::unordered_map<std::string, ucp_ep_h> eps;  // by host:port; progress thread only
  std::map<uint64_t, Pending> pending;            // by request id
  std::set<std::shared_ptr<Fetch>> active;
  uint64_t next_req = 0;
  bool stopping = false;
  TcpKvTransfer::Counters counters;

  static void on_ep_error(void* arg, ucp_ep_h ep, ucs_status_t status) {
    auto* self = static_cast<Impl*>(arg);
    std::string address;
    for (auto it = self->eps.begin(); it != self->eps.end(); ++it)
      if (it->second == ep) {
        address = it->first;
        self->eps.erase(it);
        break;
      }
    std::vector<std::shared_ptr<Fetch>> hit;
    for (const auto& f : self->active)
      if (f->ep == ep) hit.push_back(f);
    for (auto& f : hit) self->fail(f, ucs_error("KV peer ucx://" + f->address, status));
    self->progress->post([self, ep] { close_all(*self->progress, {ep}); });
  }

  Result<ucp_ep_h> endpoint(const std::string& address) {
    if (auto it = eps.find(address); it != eps.end()) return it->second;
    auto hp = split_host_port(address);
    if (!hp) return Status{StatusCode::kUnavailable, hp.status().message()};
    TURBINE_ASSIGN_OR_RETURN(auto addr, resolve(hp->first, hp->second, false));
    ucp_ep_params_t p{};
    p.field_mask = UCP_EP_PARAM_FIELD_FLAGS | UCP_EP_PARAM_FIELD_SOCK_ADDR |
                   UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE | UCP_EP_PARAM_FIELD_ERR_HANDLER;
    p.flags = UCP_EP_PARAMS_FLAGS_CLIENT_SERVER;
    p.sockaddr.addr = reinterpret_cast<const sockaddr*>(&addr.first);
    p.sockaddr.addrlen = addr.second;
    p.err_mode = UCP_ERR_HANDLING_MODE_PEER;
    p.err_handler.cb = on_ep_error;
    p.err_handler.arg = this;
    ucp_ep_h ep = nullptr;
    if (ucs_status_t s = ucp_ep_create(progress->worker(), &p, &ep); s != UCS_OK)
      return ucs_error("KV peer ucx://" + address, s);
    counters.connects++;
    eps.emplace(address, ep);
    return ep;
  }

  void fail(const std::shared_ptr<Fetch>& f, Status st) {
    if (f->finished) return;
    f->finished = true;
    active.erase(f);
    std::erase_if(pending, [&](const auto& kv) { return kv.second.fetch == f; });
    counters.fetches++;
    counters.failures++;
    if (!stopping) f->done(std::move(st));
  }

  void succeed(const std::shared_ptr<Fetch>& f) {
    f->finished = true;
    active.erase(f);
    counters.fetches++;
    counters.bytes += f->bytes.size();
    counters.seconds =
        counters.seconds.load() +
        std::chrono::duration<double>(std::chrono::steady_clock::now() - f->t0).count();
    if (!stopping) f->done(std::move(f->bytes));
  }

  void pump(const std::shared_ptr<Fetch>& f) {
    const int per_pull = static_cast<int>(
        std::max<int64_t>(1, options.max_pull_bytes / std::max<int64_t>(1, f->bpb)));
    while (!f->finished && f->next < f->first + f->n &&
           f->in_flight < std::max(1, options.pull_window)) {
      const int count = std::min(per_pull, f->first + f->n - f->next);
      PullHeader h{++next_req, f->transfer_id, f->next, count};
      pending[h.req_id] = {f, f->next, count};
      f->next += count;
      f->in_flight++;
      auto ctx = std::make_unique<SendCtx>();
      ctx->header.assign(reinterpret_cast<const char*>(&h), sizeof h);
      ctx->header += options.token;
      if (!send_am(f->ep, kAmPull, std::move(ctx), UCP_AM_SEND_FLAG_REPLY))
        return fail(f, {StatusCode::kUnavailable, "KV peer ucx://" + f->address + ": send failed"});
    }
  }

  void chunk_done(const std::shared_ptr<Fetch>& f, int count) {
    f->in_flight--;
    f->received += count;
    if (f->finished) return;
    if (f->received == f->n) return succeed(f);
    pump(f);
  }

  void start(std::shared_ptr<Fetch> f) {
    if (stopping) return;
    f->t0 = std::chrono::steady_clock::now();
    f->deadline = f->t0 + options.timeout;
    f->next = f->first;
    auto ep = endpoint(f->address);
    if (!ep.has_value()) {
      counters.fetches++;
      counters.failures++;
      return f->done(ep.status());
    }
    f->ep = *ep;
    if (f->n <= 0) {
      counters.fetches++;
      return f->done(std::string());
    }
    size_buffer(f->bytes, static_cast<size_t>(int64_t{f->n} * f->bpb));
    active.insert(f);
    pump(f);
  }

  struct RecvCtx {
    Impl* self;
    std::shared_ptr<Fetch> fetch;
    int count;
  };

  static void recv_done(void* request, ucs_status_t status, size_t, void* user_data) {
    std::unique_ptr<RecvCtx> ctx(static_cast<RecvCtx*>(user_data));
    ucp_request_free(request);
    if (status != UCS_OK) {
      ctx->fetch->in_flight--;
      return ctx->self->fail(ctx->fetch, ucs_error("KV peer ucx://" + ctx->fetch->address, status));
    }
    ctx->self->chunk_done(ctx->fetch, ctx->count);
  }

  static ucs_status_t on_data(void* arg, const void* header, size_t header_length, void* data,
                              size_t length, const ucp_am_recv_param_t* param) {
    auto* self = static_cast<Impl*>(arg);
    if (header_length < kDataHead) return UCS_OK;
    uint64_t req_id = 0;
    uint32_t code = 0, msg_len = 0;
    std::memcpy(&req_id, header, 8);
    std::memcpy(&code, static_cast<const char*>(header) + 8, 4);
    std::memcpy(&msg_len, static_cast<const char*>(header) + 12, 4);
    auto it = self->pending.find(req_id);
    if (it == self->pending.end()) return UCS_OK;  // a fetch that gave up: dropped
    Pending p = std::move(it->second);
    self->pending.erase(it);
    const auto& f = p.fetch;
    const std::string peer = "KV peer ucx://" + f->address;
    if (code != 0 || msg_len + kDataHead != header_length) {
      f->in_flight--;
      if (code == 0 || code > static_cast<uint32_t>(StatusCode::kDataLoss))
        self->fail(f, {StatusCode::kUnavailable, peer + ": malformed reply"});
      else
        self->fail(f, Status(static_cast<StatusCode>(code),
                             std::string(static_cast<const char*>(header) + kDataHead, msg_len)));
      return UCS_OK;
    }
    if (static_cast<int64_t>(length) != p.count * f->bpb) {
      f->in_flight--;
      self->fail(f, {StatusCode::kUnavailable, peer + ": sent a short block range"});
      return UCS_OK;
    }
    char* dst = f->bytes.data() + static_cast<size_t>((p.at - f->first) * f->bpb);
    if (!(param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV)) {
      std::memcpy(dst, data, length);
      self->chunk_done(f, p.count);
      return UCS_OK;
    }
    // Rendezvous: the bytes land straight in their place (RDMA where the transport has it).
    auto ctx = std::make_unique<RecvCtx>(RecvCtx{self, f, p.count});
    ucp_request_param_t rp{};
    rp.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
    rp.cb.recv_am = recv_done;
    rp.user_data = ctx.get();
    ucs_status_ptr_t r = ucp_am_recv_data_nbx(self->progress->worker(), data, dst, length, &rp);
    if (r == nullptr) {
      self->chunk_done(f, p.count);
    } else if (UCS_PTR_IS_ERR(r)) {
      f->in_flight--;
      self->fail(f, ucs_error(peer, UCS_PTR_STATUS(r)));
    } else {
      (void)ctx.release();  // recv_done frees it
    }
    return UCS_OK;
  }

  void tick() {
    const auto now = std::chrono::steady_clock::now();
    std::vector<std::shared_ptr<Fetch>> late;
    for (const auto& f : active)
      if (now >= f->deadline) late.push_back(f);
    for (auto& f : late)
      fail(f, {StatusCode::kUnavailable, "KV peer ucx://" + f->address + ": timed out"});
  }

  void cleanup() {
    stopping = true;
    std::vector<ucp_ep_h> all;
    for (auto& [a, ep] : eps) all.push_back(ep);
    eps.clear();
    close_all(*progress, all);
    pending.clear();
    active.clear();
  }
};

UcxKvTransfer::UcxKvTransfer(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

UcxKvTransfer::~UcxKvTransfer() {
  impl_->progress->stop();
}

Result<std::unique_ptr<UcxKvTransfer>> UcxKvTransfer::create(UcxKvTransferOptions options) {
  auto impl = std::make_shared<Impl>();
  impl->options = options;
  TURBINE_RETURN_IF_ERROR(impl->progress->init());
  TURBINE_RETURN_IF_ERROR(
      set_handler(impl->progress->worker(), kAmData, &Impl::on_data, impl.get()));
  Impl* raw = impl.get();
  impl->progress->run([raw] { raw->tick(); }, [raw] { raw->cleanup(); },
                      [raw] { return !raw->active.empty(); });
  return std::unique_ptr<UcxKvTransfer>(new UcxKvTransfer(std::move(impl)));
}

void UcxKvTransfer::fetch(const engine::KvTransferMeta& meta, int first_block, int n_blocks,
                          engine::KvBytesCallback done) {
  auto f = std::make_shared<Fetch>();
  f->address = ucx_host_port(meta.address).value_or(meta.address);
  f->transfer_id = meta.transfer_id;
  f->bpb = meta.layout.bytes_per_block;
  f->first = first_block;
  f->n = n_blocks;
  f->done = std::move(done);
  if (f->address.empty()) {
    f->done(Status{StatusCode::kUnavailable, "the KV transfer has no address to pull from"});
    return;
  }
  Impl* raw = impl_.get();
  if (!impl_->progress->post([raw, f] { raw->start(f); }))
    f->done(Status{StatusCode::kUnavailable, "the UCX KV transport is stopped"});
}

void UcxKvTransfer::release(const engine::KvTransferMeta& meta) {
  const std::string address = ucx_host_port(meta.address).value_or(meta.address);
  if (address.empty()) return;
  Impl* raw = impl_.get();
  impl_->progress->post([raw, address, id = meta.transfer_id] {
    auto ep = raw->endpoint(address);
    if (!ep.has_value()) return;  // the peer's TTL frees it
    auto ctx = std::make_unique<SendCtx>();
    ReleaseHeader h{id};
    ctx->header.assign(reinterpret_cast<const char*>(&h), sizeof h);
    ctx->header += raw->options.token;
    send_am(*ep, kAmRelease, std::move(ctx), 0);
  });
}

engine::KvTransportStats UcxKvTransfer::stats() const {
  engine::KvTransportStats s;
  s.transport = "ucx";
  s.fetches = impl_->counters.fetches.load();
  s.failures = impl_->counters.failures.load();
  s.bytes = impl_->counters.bytes.load();
  s.seconds = impl_->counters.seconds.load();
  s.connects = impl_->counters.connects.load();
  return s;
}

#endif  // TURBINE_HAVE_UCX

}  // namespace turbine::runtime
