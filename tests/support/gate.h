// gate.h: a test-only barrier built directly on the park state machine
// (runtime/park.h): fibers or threads wait until Open() is called.
#pragma once

#include <mutex>
#include <vector>

#include "runtime/park.h"

namespace sptest {

class Gate {
 public:
  // Waits until the gate opens or the deadline passes; returns the reason.
  int Wait(int64_t deadline = -1) {
    sp__parker_t p;
    sp__park_begin(&p);
    {
      std::lock_guard<std::mutex> g(mu_);
      if (open_) {
        if (sp__park_abort(&p)) return 0;
      } else {
        waiters_.push_back(&p);
      }
    }
    int rc = sp__park_wait(&p, deadline);
    if (rc != 0) {  // timed out: withdraw (a waker may have dropped it already)
      std::lock_guard<std::mutex> g(mu_);
      for (auto it = waiters_.begin(); it != waiters_.end(); ++it)
        if (*it == &p) {
          waiters_.erase(it);
          break;
        }
    }
    return rc;
  }
  // Wakes every waiter; later waiters pass at once. Returns how many woke.
  int Open() {
    std::lock_guard<std::mutex> g(mu_);  // held while waking (see park.h)
    open_ = true;
    int n = 0;
    for (sp__parker_t *p : waiters_)
      if (sp__park_claim(p)) {
        sp__park_wake(p, 0);
        n++;
      }
    waiters_.clear();
    return n;
  }
  size_t Waiting() {
    std::lock_guard<std::mutex> g(mu_);
    return waiters_.size();
  }

 private:
  std::mutex mu_;
  bool open_ = false;
  std::vector<sp__parker_t *> waiters_;
};

}  // namespace sptest
