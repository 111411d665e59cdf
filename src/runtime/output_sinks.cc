#include "runtime/output_sinks.h"

#include <algorithm>

namespace kiln::runtime {

Status OutputSinks::set(const std::vector<TensorInfo>& outputs, const std::string& name,
                        OutputAllocator* allocator) {
  const TensorInfo* info = nullptr;
  for (const TensorInfo& o : outputs)
    if (o.name == name) info = &o;
  if (info == nullptr) return invalid_argument("the model has no output named '" + name + "'");
  if (!info->is_tensor || info->dtype == DType::kString) {
    return invalid_argument("output '" + name + "' is not a numeric tensor: read it with output()");
  }
  auto it =
      std::find_if(sinks_.begin(), sinks_.end(), [&](const Sink& s) { return s.name == name; });
  if (allocator == nullptr) {
    if (it != sinks_.end()) sinks_.erase(it);
    return Status::Ok();
  }
  if (it == sinks_.end()) {
    sinks_.push_back({name, allocator, nullptr});
  } else if (it->allocator != allocator) {
    *it = {name, allocator, nullptr};
  }
  return Status::Ok();
}

StatusOr<void*> OutputSinks::destination(const std::string& name, const std::vector<int64_t>& shape,
                                         uint64_t bytes) {
  for (Sink& s : sinks_) {
    if (s.name != name) continue;
    s.allocator->notify_shape(name, shape);
    void* p = s.allocator->reallocate_output(name, s.current, bytes, kAlignment);
    if (p == nullptr && bytes > 0) {
      return Status(StatusCode::kOutOfMemory, "output '" + name +
                                                  "': the output allocator refused " +
                                                  std::to_string(bytes) + " bytes");
    }
    if (reinterpret_cast<uintptr_t>(p) % kAlignment != 0) {
      return invalid_argument("output '" + name +
                              "': the output allocator returned memory not "
                              "aligned to " +
                              std::to_string(kAlignment) + " bytes");
    }
    s.current = p;
    return p;
  }
  return static_cast<void*>(nullptr);
}

}  // namespace kiln::runtime
