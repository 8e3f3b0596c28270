// Encoder workers over the TCP request plane (issue 27).
//
// RemoteEncoder is an AsyncEncoder whose calls run on one remote worker: each call is one
// EncodeRequest frame on a RemoteEngine's pooled connections (Hello, keep-alive pings and the
// silence that marks a hung worker are the RemoteEngine's), answered by one EncodeResponse. A
// broken connection or a silent worker fails the calls open on it with kUnavailable, which a
// RoutedEncoder retries on another worker.
//
// TcpEncoderConnector makes them for the cards an EncoderWatcher discovers; it owns the threads
// every RemoteEncoder's connections run on.
//
// Threads: submit() from any thread; callbacks run on a connection's strand.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "encoder/async_encoder.h"
#include "runtime/component.h"
#include "runtime/io_threads.h"
#include "runtime/model_card.h"
#include "runtime/request_plane.h"

namespace turbine::runtime {

// What a card says about the model behind it.
encoder::EncoderInfo encoder_info(const ModelCard& card);

class RemoteEncoder final : public encoder::AsyncEncoder {
 public:
  RemoteEncoder(std::shared_ptr<RemoteEngine> remote, encoder::EncoderInfo info);
  ~RemoteEncoder() override;  // shutdown()

  void submit(encoder::EncoderRequest request, encoder::EncoderCallback done) override;
  encoder::EncoderInfo info() const override { return info_; }
  int in_flight() const override { return remote_->open_requests(); }
  void shutdown() override { remote_->shutdown(); }

 private:
  const std::shared_ptr<RemoteEngine> remote_;
  const encoder::EncoderInfo info_;
  std::atomic<uint64_t> next_id_{1};
};

class TcpEncoderConnector {
 public:
  // As TcpConnector: `pool_size` connections per worker on `n_threads` threads; `base` carries
  // the token and keep-alive settings.
  TcpEncoderConnector(int pool_size, int n_threads, RemoteEngineOptions base = {});
  ~TcpEncoderConnector();  // stops the threads: destroy after the encoders stop being used
  Result<std::shared_ptr<encoder::AsyncEncoder>> connect(const ParsedKey& instance,
                                                         const ModelCard& card);

 private:
  const int pool_size_;
  const RemoteEngineOptions base_;
  IoThreads io_;
};

}  // namespace turbine::runtime
