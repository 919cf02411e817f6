// Small matchers and constant helpers shared by the passes, so that no two
// passes spell the same check twice.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ir/graph.h"

namespace deepep::opt {

// Folded constants are capped: bigger outputs stay computed at run time.
inline constexpr size_t kMaxFoldBytes = size_t(64) << 20;

// `n` is the default-domain ONNX op `op`.
bool is_op(const Node& n, std::string_view op);
// v's producer when it is the default-domain op `op`, else nullptr.
Node* producer_of(const Value* v, std::string_view op);
// v's data when v is a constant, else nullptr.
inline const Tensor* constant_of(const Value* v) { return v && v->data ? &*v->data : nullptr; }

// Ops whose outputs differ from run to run: never folded or merged.
bool is_random(const Node& n);
// Nodes that may be evaluated at compile time or merged: deterministic, not
// control flow, without subgraphs.
bool is_pure(const Node& n);

// An int list that moved from an attribute to an input in a later opset
// (axes, starts, perm...): input `input`'s data if it is given (nullopt when
// that input is not a constant), else attribute `attr`, else `absent`.
std::optional<std::vector<int64_t>> ints_arg(const Node& n, int input, const char* attr,
                                             std::optional<std::vector<int64_t>> absent = {});

// Provably the same shape at run time: same rank, and each pair of dims
// both known and equal, or the same symbol.
bool same_shape(const std::optional<SymShape>& a, const std::optional<SymShape>& b);
// The rank, when known.
std::optional<int64_t> rank_of(const Value* v);
// Axes normalized into [0, rank) and sorted; nullopt when one is out of range.
std::optional<std::vector<int64_t>> normalize_axes(std::vector<int64_t> axes, int64_t rank);

// Exact equality of attributes (tensors by bytes, subgraphs by identity).
bool same_attributes(const Node& a, const Node& b);
bool same_tensor(const Tensor& a, const Tensor& b);

// A name for a value derived from `name`: "w" -> "w_folded", and
// "w_folded" -> "w_folded" again (Graph::unique_name then numbers it), so
// repeated rewrites do not stack suffixes.
std::string derived_name(const std::string& name, const std::string& suffix);

// Float tensors <-> doubles, for folding arithmetic into weights.
std::vector<double> to_doubles(const Tensor& t);
Tensor from_doubles(DType dtype, const Shape& shape, const std::vector<double>& v);
Tensor int64_tensor(const std::vector<int64_t>& v);  // 1-D int64
bool is_float(DType t);  // float32/64, float16, bfloat16: the types weights fold in

}  // namespace deepep::opt
