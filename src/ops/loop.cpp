// Loop (opsets 1-25): a generic loop over a body graph with an optional trip
// count M, an optional condition, N loop-carried values and K scan outputs.
//   body(iteration_num: int64[], cond: bool[], v_1..v_N) -> (cond, v_1..v_N, s_1..s_K)
// The body reads the enclosing graph's values directly. Scan outputs are the
// per-iteration s_k stacked along a new axis 0 (their shapes must agree).
// Trip-count/condition forms (from the spec):
//   (M, "")   for i < M; the body's condition output is ignored
//   ("", c)   while c          (M, c)  for i < M while c
//   ("", "")  the spec's infinite loop; it stops when the body's condition is
//             false, the only way such a loop can end
// Tensor values only (the loader rejects sequence-typed bodies).
#include <cstring>
#include <limits>

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

bool truth(const Tensor& t, const Node& n, const char* what) {
  DEEPEP_CHECK(t.numel() == 1, n.describe(), ": ", what, " must hold one element, got shape ",
               shape_str(t.shape()));
  return t.get_int(0) != 0;
}

// The shape of an empty stack of `v`: [0, v's static dims...], where a dim the
// model leaves open becomes 0 (the tensor is empty either way).
Shape empty_stack_shape(const Value* v) {
  Shape s{0};
  if (v->shape)
    for (const Dim& d : *v->shape) s.push_back(d.is_known() ? d.value : 0);
  return s;
}

// Gives the body's untyped inputs (ONNX function expansions leave them open)
// the types the loop feeds them, and re-infers the body, so its outputs' types
// are known (e.g. the element type of a scan output after zero iterations).
// Carried values get their dtype only: their shape may change per iteration.
void type_body_inputs(const InferContext& ctx, Graph& body) {
  bool changed = false;
  auto fill = [&](Value* v, DType dt, std::optional<SymShape> s) {
    if (v->dtype == DType::kUndefined && dt != DType::kUndefined) {
      v->dtype = dt;
      changed = true;
    }
    if (!v->shape && s) {
      v->shape = std::move(s);
      changed = true;
    }
  };
  if (body.inputs.size() > 0) fill(body.inputs[0], DType::kInt64, SymShape{});
  if (body.inputs.size() > 1) fill(body.inputs[1], DType::kBool, SymShape{});
  for (size_t i = 2; i < body.inputs.size(); ++i)
    if (ctx.has_input(int(i))) fill(body.inputs[i], ctx.input(int(i)).dtype, std::nullopt);
  if (changed) infer_shapes(body);
}

// Copies `t` into output i's own storage (from the runtime's allocator): a
// carried value may be the initial input or an enclosing value (or a view of
// one) depending on the data, and an output aliasing it would break a memory
// plan measured on a run where it did not.
void emit(KernelContext& ctx, int i, const Tensor& t) {
  Tensor& o = ctx.output(i, t.dtype(), t.shape());
  if (t.nbytes()) std::memcpy(o.raw(), t.raw(), t.nbytes());
}

// Stacks equally typed and shaped tensors along a new axis 0 into output `i`.
void stack0(KernelContext& ctx, int i, const std::vector<Tensor>& parts, int k) {
  const Node& n = ctx.node;
  const Tensor& first = parts[0];
  Shape s = first.shape();
  s.insert(s.begin(), int64_t(parts.size()));
  Tensor& out = ctx.output(i, first.dtype(), s);
  char* dst = static_cast<char*>(out.raw());
  const size_t each = first.nbytes();
  for (size_t j = 0; j < parts.size(); ++j) {
    const Tensor& p = parts[j];
    DEEPEP_CHECK(p.dtype() == first.dtype() && p.shape() == first.shape(), n.describe(),
                 ": scan output ", k, " is ", dtype_name(p.dtype()), shape_str(p.shape()),
                 " in iteration ", j, " but ", dtype_name(first.dtype()), shape_str(first.shape()),
                 " in iteration 0; scan outputs must keep their type and shape");
    if (each) std::memcpy(dst + j * each, p.raw(), each);
  }
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(Loop) {
  def.infer = [](InferContext& ctx) {
    Graph& body = const_cast<Graph&>(body_of(ctx.node));  // the node owns its body
    type_body_inputs(ctx, body);
    const int n_carried = std::max(0, int(ctx.inputs.size()) - 2);
    const int n_out = int(ctx.outputs.size());
    if (int(body.outputs.size()) != 1 + n_out) return;
    for (int i = 0; i < n_out; ++i) {
      const Value* b = body.outputs[1 + i];
      if (i < n_carried) {
        // Zero iterations return the initial value, else the body's last.
        const Value* init = ctx.has_input(2 + i) ? &ctx.input(2 + i) : nullptr;
        DType dt = init && init->dtype != DType::kUndefined ? init->dtype : b->dtype;
        std::optional<SymShape> s;
        if (init && init->shape && b->shape && *init->shape == *b->shape) s = init->shape;
        ctx.set(i, dt, s);
      } else {
        std::optional<SymShape> s;
        if (b->shape) {
          s = *b->shape;
          Dim trips;
          const Tensor* m = ctx.constant(0);
          if (m && m->numel() == 1 && !ctx.has_input(1)) trips = Dim::known(std::max<int64_t>(0, m->get_int(0)));
          s->insert(s->begin(), trips);
        }
        ctx.set(i, b->dtype, s);
      }
    }
  };
  def.reference = [](KernelContext& ctx) {
    const Node& n = ctx.node;
    const Graph& body = body_of(n);
    DEEPEP_CHECK(ctx.subgraphs, n.describe(), ": no subgraph runner available");
    const int N = std::max(0, ctx.num_inputs() - 2);
    const int n_out = int(ctx.outputs.size());
    DEEPEP_CHECK(n_out >= N, n.describe(), ": has ", N, " loop-carried inputs but only ", n_out,
                 " outputs");
    const int K = n_out - N;
    DEEPEP_CHECK(int(body.inputs.size()) == 2 + N, n.describe(), ": the body takes ",
                 body.inputs.size(), " inputs, expected ", 2 + N,
                 " (iteration number, condition and ", N, " loop-carried values)");
    DEEPEP_CHECK(int(body.outputs.size()) == 1 + N + K, n.describe(), ": the body returns ",
                 body.outputs.size(), " outputs, expected ", 1 + N + K, " (condition, ", N,
                 " loop-carried values and ", K, " scan outputs)");

    const bool has_m = ctx.has_input(0);
    const bool has_cond = ctx.has_input(1);
    int64_t trips = std::numeric_limits<int64_t>::max();
    if (has_m) {
      const Tensor& m = ctx.input(0);
      DEEPEP_CHECK(m.numel() == 1, n.describe(), ": the trip count M must hold one element, got shape ",
                   shape_str(m.shape()));
      trips = m.get_int(0);
    }
    bool cond = has_cond ? truth(ctx.input(1), n, "the condition") : true;
    // The body's condition output is ignored when only M is given (spec).
    const bool body_cond_counts = has_cond || !has_m;

    std::vector<Tensor> carried(N);
    for (int i = 0; i < N; ++i) {
      DEEPEP_CHECK(ctx.has_input(2 + i), n.describe(), ": loop-carried input ", i, " is missing");
      carried[i] = ctx.input(2 + i);
    }
    std::vector<std::vector<Tensor>> scans(K);
    std::vector<Tensor> args(2 + N);
    int64_t it = 0;
    for (; it < trips && cond; ++it) {
      args[0] = Tensor::scalar(DType::kInt64, it);
      args[1] = Tensor::scalar(DType::kBool, cond);
      for (int i = 0; i < N; ++i) args[2 + i] = carried[i];
      std::vector<Tensor> outs = ctx.subgraphs->run(body, args);
      if (body_cond_counts) cond = truth(outs[0], n, "the body's condition output");
      for (int i = 0; i < N; ++i) carried[i] = std::move(outs[1 + i]);
      for (int k = 0; k < K; ++k)
        if (ctx.output_requested(N + k)) scans[k].push_back(std::move(outs[1 + N + k]));
    }
    for (int i = 0; i < N; ++i)
      if (ctx.output_requested(i)) emit(ctx, i, carried[i]);
    for (int k = 0; k < K; ++k) {
      if (!ctx.output_requested(N + k)) continue;
      if (!scans[k].empty()) {
        stack0(ctx, N + k, scans[k], k);
        continue;
      }
      // Zero iterations: an empty tensor of the body's static element type.
      const Value* b = body.outputs[1 + N + k];
      DEEPEP_CHECK(b->dtype != DType::kUndefined, n.describe(), ": ran zero iterations and the dtype of scan output ",
                   k, " ('", b->name, "') is unknown");
      ctx.output(N + k, b->dtype, empty_stack_shape(b));
    }
  };
}
