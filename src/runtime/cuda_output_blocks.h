// Streaming a large graph output to the host while it is being made
// (cuda_executor.cpp): the node that makes it is split into blocks of rows
// (GpuKernel::row_inputs), and each block is copied to the host on a side
// stream as soon as it is done. GPT-2's logits (411 MB at batch 8) take longer
// to cross PCIe than the whole model takes to run; copied after the run, the
// copy is pure latency.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

#include "kernels/cuda/gpu_kernels.h"

namespace deepep::cuda {

// Rows of a tensor of shape `s` seen as a grid of rows: all dims but the last
// (a scalar is one row).
int64_t grid_rows(const Shape& s);

// Rows per block for an output of `rows` rows and `bytes` bytes: blocks of
// about 8 MB (at most 32 of them; rows a multiple of 64, a GEMM tile), or
// `rows` when the output is too small to be worth splitting.
int64_t output_block_rows(int64_t rows, uint64_t bytes);

// True when output 0 and every input in `row_inputs` have the same number of
// rows (all dims but the last) and are dense, so blocks of rows line up.
bool rows_line_up(const GpuNode& n, const std::vector<size_t>& row_inputs);

// `n` restricted to rows [r0, r0 + count) of its outputs with output 0's rows
// and of the inputs in `row_inputs` (each seen as a 2-D [count, last dim]
// tensor).
GpuNode row_block(const GpuNode& n, const std::vector<size_t>& row_inputs, int64_t r0, int64_t count);

// `n` making rows [r0, r0 + count) of output 0 alone: the kernel's own
// GpuKernel::row_block, else row_block over GpuKernel::row_inputs; nullopt
// when the kernel cannot (or refuses these rows).
std::optional<GpuNode> block_of(const GpuKernel& k, const GpuNode& n, int64_t r0, int64_t count);

// Row waves: a plan whose every node makes rows of the same [rows, ...] grid
// (GPT-2: embeddings, layers, logits) runs as a few waves of rows, each wave
// all nodes; a large output's rows of one wave cross PCIe while the next wave
// computes. [first row, rows] of each wave for an output of `bytes` bytes over
// `items` batch items: whole items when there are several, else blocks of a
// multiple of 64 rows; {} when waves are not worth it (under ~32 MB). `forced`
// > 1 asks for that many waves, of any row count (DEEPEP_CUDA_WAVES; fewer
// over whole items when there are fewer items).
std::vector<std::pair<int64_t, int64_t>> row_waves(int64_t rows, int64_t items, uint64_t bytes, int forced);

// For each destination in `dst`, the memcpy node of the captured graph `g`
// that writes there (nullptr when none does): the executor re-points those
// nodes at each run's result buffer (cudaGraphExecMemcpyNodeSetParams1D).
std::vector<cudaGraphNode_t> memcpy_nodes_writing(cudaGraph_t g, const std::vector<const void*>& dst);

}  // namespace deepep::cuda
