// Scan: iterates a body graph over slices of its scan inputs, carrying state.
//   Scan-8:  (sequence_lens?, init_1..init_N, scan_1..scan_M); every tensor has
//            a batch axis 0, scan inputs are scanned along axis 1, attribute
//            `directions` reverses inputs; scan outputs are [batch, max_seq, ...]
//            with the steps past a batch's sequence length zero-filled.
//   Scan-9+: (init_1..init_N, scan_1..scan_M); no batch axis; attributes
//            scan_input_axes/scan_input_directions and
//            scan_output_axes/scan_output_directions (negative axes allowed).
// body(state_1..state_N, elt_1..elt_M) -> (state_1..state_N, out_1..out_K).
// The body reads the enclosing graph's values directly. Tensor values only.
#include <cstring>

#include "frontend/onnx_loader.h"
#include "ops/op_util.h"

namespace deepep::ops {
namespace {

const Graph& body_of(const Node& n) {
  const Attribute* a = n.attr("body");
  DEEPEP_CHECK(a && !a->graphs.empty() && a->graphs[0], n.describe(),
               ": missing graph attribute 'body'");
  return *a->graphs[0];
}

bool is_scan8(const Node& n) { return n.opset > 0 && n.opset < 9; }

// A tensor viewed as [outer, len, inner bytes] around `axis`.
struct Split {
  int64_t outer = 1, len = 0;
  size_t inner = 0;
};
Split split_at(const Shape& s, int axis, DType dt) {
  Split r;
  r.len = s[axis];
  int64_t in = 1;
  for (int i = 0; i < axis; ++i) r.outer *= s[i];
  for (size_t i = axis + 1; i < s.size(); ++i) in *= s[i];
  r.inner = size_t(in) * dtype_size(dt);
  return r;
}

// The sub-tensor at `idx` along `axis` (rank drops by one).
Tensor slice_at(const Tensor& t, int axis, int64_t idx) {
  Split sp = split_at(t.shape(), axis, t.dtype());
  Shape s = t.shape();
  s.erase(s.begin() + axis);
  Tensor out(t.dtype(), s);
  const char* src = static_cast<const char*>(t.raw());
  char* dst = static_cast<char*>(out.raw());
  if (sp.inner)
    for (int64_t o = 0; o < sp.outer; ++o)
      std::memcpy(dst + o * sp.inner, src + (o * sp.len + idx) * sp.inner, sp.inner);
  return out;
}

// Writes `src` into `dst` at `idx` along `axis` (dst has rank src + 1).
void place_at(Tensor& dst, int axis, int64_t idx, const Tensor& src) {
  Split sp = split_at(dst.shape(), axis, dst.dtype());
  const char* s = static_cast<const char*>(src.raw());
  char* d = static_cast<char*>(dst.raw());
  if (sp.inner)
    for (int64_t o = 0; o < sp.outer; ++o)
      std::memcpy(d + (o * sp.len + idx) * sp.inner, s + o * sp.inner, sp.inner);
}

// Gives the body's untyped inputs (ONNX function expansions leave them open)
// the types the scan feeds them, and re-infers the body: states keep their
// type; a scan element is its input without the scanned axis (and, in
// Scan-8, without the batch axis).
void type_body_inputs(const InferContext& ctx, Graph& body, int lead, int N, int M) {
  if (int(body.inputs.size()) != N + M) return;
  const Node& n = ctx.node;
  std::vector<int64_t> axes = n.attr_ints("scan_input_axes");
  bool changed = false;
  for (int j = 0; j < N + M; ++j) {
    Value* b = body.inputs[j];
    if (!ctx.has_input(lead + j)) continue;
    const Value& x = ctx.input(lead + j);
    if (b->dtype == DType::kUndefined && x.dtype != DType::kUndefined) {
      b->dtype = x.dtype;
      changed = true;
    }
    if (b->shape || !x.shape) continue;
    SymShape s = *x.shape;
    if (j >= N) {
      const int64_t r = int64_t(s.size());
      if (is_scan8(n)) {
        if (r < 2) continue;
        s.erase(s.begin(), s.begin() + 2);
      } else {
        int64_t a = j - N < int(axes.size()) ? axes[size_t(j - N)] : 0;
        if (a < 0) a += r;
        if (a < 0 || a >= r) continue;
        s.erase(s.begin() + a);
      }
    } else if (is_scan8(n)) {
      if (s.empty()) continue;
      s.erase(s.begin());
    }
    b->shape = std::move(s);
    changed = true;
  }
  if (changed) infer_shapes(body);
}

// Copies `t` into output i's own storage (from the runtime's allocator): a
// final state may be the initial input or an enclosing value (or a view of
// one) depending on the data, and an output aliasing it would break a memory
// plan measured on a run where it did not.
void emit(KernelContext& ctx, int i, const Tensor& t) {
  Tensor& o = ctx.output(i, t.dtype(), t.shape());
  if (t.nbytes()) std::memcpy(o.raw(), t.raw(), t.nbytes());
}

// Static element dims of a body output, open dims as 0 (used only for empty results).
Shape static_dims(const Value* v) {
  Shape s;
  if (v->shape)
    for (const Dim& d : *v->shape) s.push_back(d.is_known() ? d.value : 0);
  return s;
}

void check_same(const Tensor& a, const Tensor& b, const Node& n, const char* what, int k) {
  DEEPEP_CHECK(a.dtype() == b.dtype() && a.shape() == b.shape(), n.describe(), ": ", what, " ", k,
               " changes from ", dtype_name(a.dtype()), shape_str(a.shape()), " to ",
               dtype_name(b.dtype()), shape_str(b.shape()),
               " between iterations; Scan requires a fixed type and shape");
}

std::vector<int64_t> per_item(const Node& n, const char* attr, int count) {
  std::vector<int64_t> v = n.attr_ints(attr);
  if (v.empty()) return std::vector<int64_t>(size_t(count), 0);
  DEEPEP_CHECK(int(v.size()) == count, n.describe(), ": attribute '", attr, "' has ", v.size(),
               " entries, expected ", count);
  return v;
}

struct Counts {
  int N, M, K;
};
Counts counts(const Node& n, const Graph& body, int n_inputs, int n_outputs, int lead) {
  const int64_t M = n.attr_int("num_scan_inputs", -1);
  DEEPEP_CHECK(M >= 1, n.describe(), ": attribute 'num_scan_inputs' must be at least 1, got ", M);
  const int N = n_inputs - lead - int(M);
  DEEPEP_CHECK(N >= 0, n.describe(), ": num_scan_inputs is ", M, " but the node has only ",
               n_inputs - lead, " state and scan inputs");
  const int K = n_outputs - N;
  DEEPEP_CHECK(K >= 0, n.describe(), ": has ", N, " state inputs but only ", n_outputs, " outputs");
  DEEPEP_CHECK(int(body.inputs.size()) == N + M, n.describe(), ": the body takes ",
               body.inputs.size(), " inputs, expected ", N + M, " (", N, " states and ", M,
               " scan elements)");
  DEEPEP_CHECK(int(body.outputs.size()) == N + K, n.describe(), ": the body returns ",
               body.outputs.size(), " outputs, expected ", N + K, " (", N, " states and ", K,
               " scan outputs)");
  return {N, int(M), K};
}

// Scan-9 and later.
void run_scan9(KernelContext& ctx) {
  const Node& n = ctx.node;
  const Graph& body = body_of(n);
  auto [N, M, K] = counts(n, body, ctx.num_inputs(), int(ctx.outputs.size()), 0);
  std::vector<int64_t> in_axes = per_item(n, "scan_input_axes", M);
  std::vector<int64_t> in_dirs = per_item(n, "scan_input_directions", M);
  std::vector<int64_t> out_axes = per_item(n, "scan_output_axes", K);
  std::vector<int64_t> out_dirs = per_item(n, "scan_output_directions", K);

  std::vector<const Tensor*> scans(M);
  int64_t seq = -1;
  for (int j = 0; j < M; ++j) {
    const Tensor& x = ctx.input(N + j);
    DEEPEP_CHECK(x.rank() >= 1, n.describe(), ": scan input ", j, " must have rank >= 1, got a scalar");
    in_axes[j] = normalize_axis(in_axes[j], x.rank(), n);
    const int64_t len = x.dim(int(in_axes[j]));
    DEEPEP_CHECK(seq < 0 || len == seq, n.describe(), ": scan input ", j, " has ", len,
                 " steps along axis ", in_axes[j], ", scan input 0 has ", seq);
    seq = len;
    scans[j] = &x;
  }
  std::vector<Tensor> states(N);
  for (int i = 0; i < N; ++i) states[i] = ctx.input(i);
  std::vector<std::vector<Tensor>> elems(K);
  std::vector<Tensor> args(N + M);
  for (int64_t t = 0; t < seq; ++t) {
    for (int i = 0; i < N; ++i) args[i] = states[i];
    for (int j = 0; j < M; ++j)
      args[N + j] = slice_at(*scans[j], int(in_axes[j]), in_dirs[j] ? seq - 1 - t : t);
    std::vector<Tensor> outs = ctx.subgraphs->run(body, args);
    for (int i = 0; i < N; ++i) states[i] = std::move(outs[i]);
    for (int k = 0; k < K; ++k) {
      if (!elems[k].empty()) check_same(elems[k][0], outs[N + k], n, "scan output", k);
      elems[k].push_back(std::move(outs[N + k]));
    }
  }
  for (int i = 0; i < N; ++i)
    if (ctx.output_requested(i)) emit(ctx, i, states[i]);
  for (int k = 0; k < K; ++k) {
    const Value* b = body.outputs[N + k];
    DType dt = seq > 0 ? elems[k][0].dtype() : b->dtype;
    Shape es = seq > 0 ? elems[k][0].shape() : static_dims(b);
    DEEPEP_CHECK(dt != DType::kUndefined, n.describe(), ": ran zero iterations and the dtype of scan output ", k,
                 " ('", b->name, "') is unknown");
    const int axis = int(normalize_axis(out_axes[k], int64_t(es.size()) + 1, n));
    Shape s = es;
    s.insert(s.begin() + axis, std::max<int64_t>(seq, 0));
    Tensor& out = ctx.output(N + k, dt, s);
    for (int64_t t = 0; t < seq; ++t) place_at(out, axis, out_dirs[k] ? seq - 1 - t : t, elems[k][t]);
  }
}

// Scan-8: batched, with optional per-batch sequence lengths.
void run_scan8(KernelContext& ctx) {
  const Node& n = ctx.node;
  const Graph& body = body_of(n);
  auto [N, M, K] = counts(n, body, ctx.num_inputs(), int(ctx.outputs.size()), 1);
  std::vector<int64_t> dirs = per_item(n, "directions", M);
  int64_t batch = -1, max_seq = -1;
  for (int j = 0; j < M; ++j) {
    const Tensor& x = ctx.input(1 + N + j);
    DEEPEP_CHECK(x.rank() >= 2, n.describe(), ": scan input ", j,
                 " must have a batch and a sequence axis, got shape ", shape_str(x.shape()));
    DEEPEP_CHECK(batch < 0 || (x.dim(0) == batch && x.dim(1) == max_seq), n.describe(), ": scan input ",
                 j, " has shape ", shape_str(x.shape()), ", expected [", batch, ", ", max_seq, ", ...]");
    batch = x.dim(0);
    max_seq = x.dim(1);
  }
  for (int i = 0; i < N; ++i) {
    const Tensor& s = ctx.input(1 + i);
    DEEPEP_CHECK(s.rank() >= 1 && s.dim(0) == batch, n.describe(), ": initial state ", i,
                 " must have batch size ", batch, " on axis 0, got shape ", shape_str(s.shape()));
  }
  std::vector<int64_t> lens(size_t(batch), max_seq);
  if (ctx.has_input(0)) {
    const Tensor& l = ctx.input(0);
    DEEPEP_CHECK(l.numel() == batch, n.describe(), ": sequence_lens holds ", l.numel(),
                 " values, expected one per batch entry (", batch, ")");
    for (int64_t b = 0; b < batch; ++b) {
      lens[b] = l.get_int(b);
      DEEPEP_CHECK(lens[b] >= 0 && lens[b] <= max_seq, n.describe(), ": sequence_lens[", b, "] is ",
                   lens[b], ", outside [0, ", max_seq, "]");
    }
  }
  std::vector<std::vector<Tensor>> final_states(N);            // [i][batch]
  std::vector<std::vector<std::vector<Tensor>>> elems(K);      // [k][batch][t]
  for (auto& e : elems) e.resize(size_t(batch));
  std::vector<Tensor> args(N + M);
  for (int64_t b = 0; b < batch; ++b) {
    std::vector<Tensor> states(N);
    for (int i = 0; i < N; ++i) states[i] = slice_at(ctx.input(1 + i), 0, b);
    std::vector<Tensor> rows(M);
    for (int j = 0; j < M; ++j) rows[j] = slice_at(ctx.input(1 + N + j), 0, b);
    const int64_t len = lens[b];
    for (int64_t t = 0; t < len; ++t) {
      for (int i = 0; i < N; ++i) args[i] = states[i];
      for (int j = 0; j < M; ++j) args[N + j] = slice_at(rows[j], 0, dirs[j] ? len - 1 - t : t);
      std::vector<Tensor> outs = ctx.subgraphs->run(body, args);
      for (int i = 0; i < N; ++i) states[i] = std::move(outs[i]);
      for (int k = 0; k < K; ++k) elems[k][b].push_back(std::move(outs[N + k]));
    }
    for (int i = 0; i < N; ++i) final_states[i].push_back(std::move(states[i]));
  }
  for (int i = 0; i < N; ++i) {
    if (batch == 0) {
      emit(ctx, i, ctx.input(1 + i));
      continue;
    }
    const auto& parts = final_states[i];
    Shape s = parts[0].shape();
    s.insert(s.begin(), batch);
    Tensor& out = ctx.output(i, parts[0].dtype(), s);
    for (int64_t b = 0; b < batch; ++b) {
      check_same(parts[0], parts[b], n, "state", i);
      place_at(out, 0, b, parts[b]);
    }
  }
  for (int k = 0; k < K; ++k) {
    const Tensor* first = nullptr;
    for (int64_t b = 0; b < batch && !first; ++b)
      if (!elems[k][b].empty()) first = &elems[k][b][0];
    const Value* bv = body.outputs[N + k];
    DType dt = first ? first->dtype() : bv->dtype;
    DEEPEP_CHECK(dt != DType::kUndefined, n.describe(), ": ran zero iterations and the dtype of scan output ", k,
                 " ('", bv->name, "') is unknown");
    Shape es = first ? first->shape() : static_dims(bv);
    Shape s = es;
    s.insert(s.begin(), {batch, max_seq});
    Tensor& out = ctx.output(N + k, dt, s);
    if (out.nbytes()) std::memset(out.raw(), 0, out.nbytes());  // steps past a sequence's length stay zero
    Shape flat = es;
    flat.insert(flat.begin(), batch * max_seq);
    Tensor view = out.reshaped(flat);
    for (int64_t b = 0; b < batch; ++b)
      for (size_t t = 0; t < elems[k][b].size(); ++t) {
        check_same(*first, elems[k][b][t], n, "scan output", k);
        place_at(view, 0, b * max_seq + int64_t(t), elems[k][b][t]);
      }
  }
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(Scan) {
  def.infer = [](InferContext& ctx) {
    const Node& n = ctx.node;
    Graph& body = const_cast<Graph&>(body_of(n));  // the node owns its body
    const bool v8 = is_scan8(n);
    const int lead = v8 ? 1 : 0;
    const int64_t M = n.attr_int("num_scan_inputs", -1);
    const int N = int(ctx.inputs.size()) - lead - int(M);
    const int K = int(ctx.outputs.size()) - N;
    if (M < 1 || N < 0 || K < 0 || int(body.outputs.size()) != N + K) return;
    type_body_inputs(ctx, body, lead, N, int(M));
    for (int i = 0; i < N; ++i) {
      const Value* init = ctx.has_input(lead + i) ? &ctx.input(lead + i) : nullptr;
      if (init) ctx.set(i, init->dtype != DType::kUndefined ? init->dtype : body.outputs[i]->dtype, init->shape);
    }
    const Value* scan0 = ctx.has_input(lead + N) ? &ctx.input(lead + N) : nullptr;
    std::vector<int64_t> out_axes = n.attr_ints("scan_output_axes");
    for (int k = 0; k < K; ++k) {
      const Value* b = body.outputs[N + k];
      std::optional<SymShape> s;
      if (b->shape && scan0 && scan0->shape) {
        s = *b->shape;
        const SymShape& xs = *scan0->shape;
        if (v8) {
          if (xs.size() >= 2) s->insert(s->begin(), {xs[0], xs[1]});
          else s.reset();
        } else {
          int64_t in_axis = n.attr_ints("scan_input_axes").empty() ? 0 : n.attr_ints("scan_input_axes")[0];
          if (in_axis < 0) in_axis += int64_t(xs.size());
          int64_t out_axis = k < int(out_axes.size()) ? out_axes[k] : 0;
          const int64_t r = int64_t(s->size()) + 1;
          if (out_axis < 0) out_axis += r;
          if (in_axis >= 0 && in_axis < int64_t(xs.size()) && out_axis >= 0 && out_axis < r)
            s->insert(s->begin() + out_axis, xs[size_t(in_axis)]);
          else
            s.reset();
        }
      }
      ctx.set(N + k, b->dtype, s);
    }
  };
  def.reference = [](KernelContext& ctx) {
    DEEPEP_CHECK(ctx.subgraphs, ctx.node.describe(), ": no subgraph runner available");
    if (is_scan8(ctx.node)) run_scan8(ctx);
    else run_scan9(ctx);
  };
}
