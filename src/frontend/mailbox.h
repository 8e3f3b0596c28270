// Mailbox: hands engine outputs from the engine thread to a request's coroutine.
//
// Created on the request's strand. `deliver` may be called from any thread (the engine thread);
// it posts to the strand, so the queue itself is only touched there. The coroutine waits with
// `co_await next()`. `close()` (client gone, shutdown) wakes the waiter with nothing.
#pragma once

#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <utility>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "engine/async_engine.h"

namespace turbine::frontend {

struct MailItem {
  int index = 0;  // which prompt of the request (batched completions)
  engine::EngineOutput output;
};

class Mailbox : public std::enable_shared_from_this<Mailbox> {
 public:
  explicit Mailbox(boost::asio::any_io_executor strand)
      : strand_(std::move(strand)), timer_(strand_) {
    timer_.expires_at(std::chrono::steady_clock::time_point::max());
  }

  // Any thread.
  void deliver(int index, engine::EngineOutput&& out) {
    boost::asio::post(strand_, [self = shared_from_this(), index, out = std::move(out)]() mutable {
      self->items_.push_back({index, std::move(out)});
      self->timer_.cancel();
    });
  }
  void close() {
    boost::asio::post(strand_, [self = shared_from_this()] {
      self->closed_ = true;
      self->timer_.cancel();
    });
  }

  // On the strand: everything delivered so far, waiting if there is nothing yet. Empty means
  // the mailbox was closed.
  boost::asio::awaitable<std::deque<MailItem>> next() {
    while (items_.empty() && !closed_) {
      boost::system::error_code ec;
      timer_.expires_at(std::chrono::steady_clock::time_point::max());
      co_await timer_.async_wait(boost::asio::redirect_error(boost::asio::use_awaitable, ec));
    }
    std::deque<MailItem> out;
    out.swap(items_);
    co_return out;
  }
  bool closed() const { return closed_; }

 private:
  boost::asio::any_io_executor strand_;
  boost::asio::steady_timer timer_;
  std::deque<MailItem> items_;
  bool closed_ = false;
};

}  // namespace turbine::frontend
