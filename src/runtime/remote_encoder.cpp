#include "runtime/remote_encoder.h"

namespace turbine::runtime {

encoder::EncoderInfo encoder_info(const ModelCard& card) {
  encoder::EncoderInfo i;
  if (auto t = encoder::task_from_name(card.task); t.has_value()) i.task = *t;
  i.hidden_dim = card.embedding_dim;
  i.max_tokens = static_cast<int>(card.context_length);
  i.max_inputs = static_cast<size_t>(card.max_inputs);
  i.labels = card.labels;
  return i;
}

RemoteEncoder::RemoteEncoder(std::shared_ptr<RemoteEngine> remote, encoder::EncoderInfo info)
    : remote_(std::move(remote)), info_(std::move(info)) {}

RemoteEncoder::~RemoteEncoder() {
  remote_->shutdown();
}

void RemoteEncoder::submit(encoder::EncoderRequest request, encoder::EncoderCallback done) {
  // Checked here too, so that a request the worker would refuse never leaves the frontend.
  if (info_.max_inputs > 0 && request.n_inputs() > info_.max_inputs) {
    done(invalid_argument("too many inputs in " + request.input_field + ": " +
                              std::to_string(request.n_inputs()) + " (at most " +
                              std::to_string(info_.max_inputs) + ")",
                          request.input_field));
    return;
  }
  remote_->encode_call(next_id_.fetch_add(1), request, std::move(done));
}

TcpEncoderConnector::TcpEncoderConnector(int pool_size, int n_threads, RemoteEngineOptions base)
    : pool_size_(pool_size), base_(std::move(base)), io_(n_threads) {}

TcpEncoderConnector::~TcpEncoderConnector() {
  io_.stop();
}

Result<std::shared_ptr<encoder::AsyncEncoder>> TcpEncoderConnector::connect(const ParsedKey&,
                                                                            const ModelCard& card) {
  if (!card.is_encoder()) return invalid_argument("not an encoder model card", "task");
  TURBINE_RETURN_IF_ERROR(encoder::task_from_name(card.task).status());
  RemoteEngineOptions o = base_;
  o.address = card.address;
  o.pool_size = pool_size_;
  o.max_context = static_cast<int>(card.context_length);
  o.block_size = card.block_size;
  o.num_slots = card.max_num_seqs;
  auto remote = std::make_shared<RemoteEngine>(std::move(o), io_.executor());
  return std::shared_ptr<encoder::AsyncEncoder>(
      std::make_shared<RemoteEncoder>(std::move(remote), encoder_info(card)));
}

}  // namespace turbine::runtime
