// Names the calling thread (what `top -H`, perf and gdb show), so a profile
// says which part of the broker is busy: hf-net-0, hf-flush, hf-raft, ...
// Linux keeps at most 15 characters; longer names are cut.
#pragma once

#include <pthread.h>

#include <string>

namespace holdfast {

inline void set_thread_name(const std::string& name) {
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

}  // namespace holdfast
