#include "runtime/cuda_output_blocks.h"

#include <algorithm>
#include <map>

namespace deepep::cuda {

namespace {
constexpr uint64_t kBlockBytes = uint64_t(8) << 20;
constexpr int64_t kMaxBlocks = 32;
constexpr int64_t kRowQuantum = 64;

int64_t rows_of(const GpuTensor& t) {
  if (t.shape.empty()) return 1;
  return t.shape.back() == 0 ? 0 : t.numel() / t.shape.back();
}
}  // namespace

int64_t output_block_rows(int64_t rows, uint64_t bytes) {
  const int64_t blocks = std::min<int64_t>(kMaxBlocks, int64_t(bytes / kBlockBytes));
  if (blocks < 2 || rows < 2 * kRowQuantum) return rows;
  const int64_t per = (rows + blocks - 1) / blocks;
  return std::min(rows, (per + kRowQuantum - 1) / kRowQuantum * kRowQuantum);
}

bool rows_line_up(const GpuNode& n, const std::vector<size_t>& row_inputs) {
  if (n.out.empty() || n.out[0].shape.empty()) return false;
  const int64_t rows = rows_of(n.out[0]);
  for (size_t i : row_inputs)
    if (!n.has_input(i) || n.in[i].shape.empty() || n.in[i].host || rows_of(n.in[i]) != rows) return false;
  return rows > 0;
}

GpuNode row_block(const GpuNode& n, const std::vector<size_t>& row_inputs, int64_t r0, int64_t count) {
  auto slice = [&](GpuTensor& t) {
    const int64_t cols = t.shape.back();
    t.data = static_cast<char*>(t.data) + size_t(r0 * cols) * dtype_size(t.dtype);
    t.shape = {count, cols};
  };
  GpuNode b{n.node, n.in, n.out, nullptr};
  for (size_t i : row_inputs) slice(b.in[i]);
  slice(b.out[0]);
  return b;
}

std::vector<cudaGraphNode_t> memcpy_nodes_writing(cudaGraph_t g, const std::vector<const void*>& dst) {
  std::vector<cudaGraphNode_t> found(dst.size(), nullptr);
  size_t count = 0;
  if (cudaGraphGetNodes(g, nullptr, &count) != cudaSuccess) return found;
  std::vector<cudaGraphNode_t> nodes(count);
  if (cudaGraphGetNodes(g, nodes.data(), &count) != cudaSuccess) return found;
  std::map<const void*, size_t> index;
  for (size_t i = 0; i < dst.size(); ++i) index[dst[i]] = i;
  for (cudaGraphNode_t node : nodes) {
    cudaGraphNodeType type;
    if (cudaGraphNodeGetType(node, &type) != cudaSuccess || type != cudaGraphNodeTypeMemcpy) continue;
    cudaMemcpy3DParms p{};
    if (cudaGraphMemcpyNodeGetParams(node, &p) != cudaSuccess) continue;
    const void* to = static_cast<const char*>(p.dstPtr.ptr) + p.dstPos.x;
    if (auto it = index.find(to); it != index.end()) found[it->second] = node;
  }
  return found;
}

}  // namespace deepep::cuda
