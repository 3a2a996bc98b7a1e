// File: outbound_stream.h
// A server-streaming reactor with a thread-safe outbox: producers on any thread Push()
// messages; the reactor writes them one at a time, in order, without ever blocking a gRPC
// thread. Used for task subscriptions and run watches.
#ifndef TESSERA_COORDINATOR_SERVICE_OUTBOUND_STREAM_H_
#define TESSERA_COORDINATOR_SERVICE_OUTBOUND_STREAM_H_

#include <deque>
#include <functional>
#include <memory>
#include <utility>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace tessera::coordinator {

// Shared by the reactor (which keeps it alive until the RPC is done) and by producers.
// Thread-safe.
template <typename T>
class OutboundStream {
 public:
  // Creates the stream and its reactor; return the reactor from the service method.
  // `on_end` runs once when the RPC is over (client gone, cancelled or finished).
  static std::pair<std::shared_ptr<OutboundStream>, grpc::ServerWriteReactor<T>*> Create(
      std::function<void()> on_end) {
    auto stream = std::shared_ptr<OutboundStream>(new OutboundStream());
    auto* reactor = new Reactor(stream, std::move(on_end));
    stream->reactor_ = reactor;
    return {stream, reactor};
  }

  OutboundStream(const OutboundStream&) = delete;
  OutboundStream& operator=(const OutboundStream&) = delete;

  // Queues `message`; false once the stream is finishing or over.
  bool Push(T message) {
    Reactor* start = nullptr;
    const T* next = nullptr;
    {
      absl::MutexLock l(&mu_);
      if (reactor_ == nullptr || finishing_ || cancelled_) return false;
      queue_.push_back(std::move(message));
      if (!writing_) {
        writing_ = true;
        start = reactor_;
        next = &queue_.front();  // deque references survive push_back
      }
    }
    // Outside the lock: gRPC may run reactions inline. While writing_ is set nobody else
    // finishes the RPC, so the reactor stays alive.
    if (start != nullptr) start->StartWrite(next);
    return true;
  }

  // Ends the RPC with `status` once the queued messages are written.
  void Finish(grpc::Status status) {
    Reactor* finish = nullptr;
    {
      absl::MutexLock l(&mu_);
      if (reactor_ == nullptr || finishing_) return;
      finishing_ = true;
      final_status_ = status;
      if (!writing_ && !finished_) {
        finished_ = true;
        finish = reactor_;
      }
    }
    if (finish != nullptr) finish->Finish(status);
  }

  bool open() const {
    absl::MutexLock l(&mu_);
    return reactor_ != nullptr && !finishing_ && !cancelled_;
  }

 private:
  class Reactor : public grpc::ServerWriteReactor<T> {
   public:
    Reactor(std::shared_ptr<OutboundStream> stream, std::function<void()> on_end)
        : stream_(std::move(stream)), on_end_(std::move(on_end)) {}

    void OnWriteDone(bool ok) override {
      const T* next = nullptr;
      bool finish = false;
      grpc::Status status;
      {
        absl::MutexLock l(&stream_->mu_);
        stream_->queue_.pop_front();
        if (!ok) stream_->cancelled_ = true;
        if (ok && !stream_->cancelled_ && !stream_->queue_.empty()) {
          next = &stream_->queue_.front();
        } else {
          stream_->writing_ = false;
          if ((stream_->finishing_ || stream_->cancelled_) && !stream_->finished_) {
            stream_->finished_ = true;
            finish = true;
            status = stream_->cancelled_ ? grpc::Status::CANCELLED : stream_->final_status_;
          }
        }
      }
      if (next != nullptr) {
        this->StartWrite(next);
      } else if (finish) {
        this->Finish(status);
      }
    }

    void OnCancel() override {
      bool finish = false;
      {
        absl::MutexLock l(&stream_->mu_);
        stream_->cancelled_ = true;
        if (!stream_->writing_ && !stream_->finished_) {
          stream_->finished_ = true;
          finish = true;
        }
      }
      if (finish) this->Finish(grpc::Status::CANCELLED);
    }

    void OnDone() override {
      {
        absl::MutexLock l(&stream_->mu_);
        stream_->reactor_ = nullptr;
        stream_->queue_.clear();
      }
      if (on_end_) on_end_();
      delete this;
    }

   private:
    std::shared_ptr<OutboundStream> stream_;
    std::function<void()> on_end_;
  };

  OutboundStream() = default;

  mutable absl::Mutex mu_;
  Reactor* reactor_ ABSL_GUARDED_BY(mu_) = nullptr;
  std::deque<T> queue_ ABSL_GUARDED_BY(mu_);  // front() is in flight while writing_
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status final_status_ ABSL_GUARDED_BY(mu_);
};

}  // namespace tessera::coordinator

#endif  // TESSERA_COORDINATOR_SERVICE_OUTBOUND_STREAM_H_
