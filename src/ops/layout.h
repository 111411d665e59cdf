// Channels-last (NHWC) forms of the convolution family, made by the layout pass
// (src/passes/layout_nhwc.cc) for GPU engines: kiln.FusedConv with `channels_last` = 1 reads X
// and Z and writes Y as [N, spatial..., C] and takes W as [M, kernel..., C/group];
// kiln.ChannelsLastMaxPool / kiln.ChannelsLastAveragePool are MaxPool / AveragePool (same
// attributes, one output) on [N, spatial..., C] tensors.
#pragma once

#include <cstdint>
#include <vector>

namespace kiln::ops {

inline constexpr const char* kChannelsLastAttr = "channels_last";
inline constexpr const char* kChannelsLastMaxPoolOp = "ChannelsLastMaxPool";
inline constexpr const char* kChannelsLastAveragePoolOp = "ChannelsLastAveragePool";

// Transpose perms of rank `rank` (>= 2): channels-first [N, C, s...] to channels-last
// [N, s..., C] ({0, 2, ..., rank-1, 1}) and back ({0, rank-1, 1, ..., rank-2}).
inline std::vector<int64_t> to_channels_last_perm(int rank) {
  std::vector<int64_t> p = {0};
  for (int i = 2; i < rank; ++i) p.push_back(i);
  p.push_back(1);
  return p;
}
inline std::vector<int64_t> to_channels_first_perm(int rank) {
  std::vector<int64_t> p = {0, rank - 1};
  for (int i = 1; i < rank - 1; ++i) p.push_back(i);
  return p;
}

}  // namespace kiln::ops
