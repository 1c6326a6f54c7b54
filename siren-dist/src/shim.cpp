// A C interface to LibTorch's c10d (the runtime torch.distributed uses): a TCPStore joined the
// way torchrun's workers join it, a gloo process group on it, and the three collectives
// SIREN-rs needs on flat f32 buffers (sum all-reduce, broadcast, barrier). Errors are caught
// and returned as text; no C++ exception crosses into Rust.
#include <ATen/ATen.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <chrono>
#include <cstdint>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

struct SirenDist {
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
};

static void write_error(char* buf, size_t len, const char* msg) {
  if (buf != nullptr && len > 0) {
    std::strncpy(buf, msg, len - 1);
    buf[len - 1] = '\0';
  }
}

template <typename F>
static int guarded(char* err, size_t err_len, F f) {
  try {
    f();
    return 0;
  } catch (const c10::Error& e) {
    // c10's own message, without the C++ backtrace `what()` appends.
    write_error(err, err_len, e.what_without_backtrace());
  } catch (const std::exception& e) {
    write_error(err, err_len, e.what());
  } catch (...) {
    write_error(err, err_len, "unknown C++ exception");
  }
  return 1;
}

extern "C" {

// Joins the store at host:port (hosting it when is_server) and makes a gloo group of `world`
// ranks in which this process is `rank`. Returns null and writes `err` on failure.
SirenDist* siren_dist_gloo_new(const char* host, uint16_t port, int is_server, int rank,
                               int world, int64_t timeout_ms, char* err, size_t err_len) {
  SirenDist* out = nullptr;
  guarded(err, err_len, [&] {
    c10d::TCPStoreOptions o;
    o.port = port;
    o.isServer = is_server != 0;
    o.numWorkers = world;
    o.waitWorkers = false;
    o.timeout = std::chrono::milliseconds(timeout_ms);
    auto store = c10::make_intrusive<c10d::TCPStore>(std::string(host), o);
    auto prefixed = c10::make_intrusive<c10d::PrefixStore>("siren-dist/", store);
    auto opts = c10d::ProcessGroupGloo::Options::create(std::chrono::milliseconds(timeout_ms));
    opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    opts->threads = 2;
    auto group = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, rank, world, opts);
    out = new SirenDist{group};
  });
  return out;
}

// Sums `data[0..n]` over every rank, in place.
int siren_dist_all_reduce_sum_f32(SirenDist* d, float* data, int64_t n, char* err,
                                  size_t err_len) {
  return guarded(err, err_len, [&] {
    std::vector<at::Tensor> t{at::from_blob(data, {n}, at::kFloat)};
    d->group->allreduce(t)->wait();
  });
}

// Replaces `data[0..n]` with rank `root`'s values.
int siren_dist_broadcast_f32(SirenDist* d, float* data, int64_t n, int root, char* err,
                             size_t err_len) {
  return guarded(err, err_len, [&] {
    std::vector<at::Tensor> t{at::from_blob(data, {n}, at::kFloat)};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    d->group->broadcast(t, o)->wait();
  });
}

// Returns once every rank has called it.
int siren_dist_barrier(SirenDist* d, char* err, size_t err_len) {
  return guarded(err, err_len, [&] { d->group->barrier()->wait(); });
}

void siren_dist_free(SirenDist* d) { delete d; }

}  // extern "C"
