// Einsum: general Einstein summation, numpy semantics. Supports any number of
// operands, "..." (broadcast like numpy, right-aligned), repeated labels in one
// operand (diagonals / traces), implicit output (ellipsis dims, then the labels
// that appear once, in ASCII order), and size-1 broadcasting of a label.
// The kernel walks every combination of label values once (output labels
// outermost), accumulating in double (float types) or int64 (integers).
#include <cctype>
#include <map>

#include "ops/op_util.h"

namespace deepep::ops {
namespace {

constexpr int kEllipsisBase = 128;  // label ids of ellipsis dims: 128 + position

struct Parsed {
  std::vector<std::vector<int>> in;  // per operand, a label id per axis
  std::vector<int> out;              // a label id per output axis
};

// Parses one term ("ab...c") into label ids, expanding "..." into `ell` ids
// that right-align with the global ellipsis of rank `ell_rank`.
std::vector<int> parse_term(const std::string& t, int64_t rank, int64_t ell_rank, bool is_output,
                            const Node& node, bool* has_ellipsis = nullptr) {
  std::vector<int> ids;
  int64_t letters = 0;
  bool ell = false;
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] == '.') {
      DEEPEP_CHECK(!ell && t.compare(i, 3, "...") == 0, node.describe(), ": malformed ellipsis in equation term '", t,
                   "'");
      ell = true;
      i += 2;
      continue;
    }
    DEEPEP_CHECK(std::isalpha(static_cast<unsigned char>(t[i])), node.describe(), ": invalid character '", t[i],
                 "' in equation term '", t, "'");
    ++letters;
  }
  if (has_ellipsis) *has_ellipsis = ell;
  int64_t e = 0;  // ellipsis dims in this term
  if (is_output) {
    e = ell ? ell_rank : 0;
  } else {
    DEEPEP_CHECK(ell ? rank >= letters : rank == letters, node.describe(), ": equation term '", t, "' has ", letters,
                 " labels but the operand has rank ", rank);
    e = ell ? rank - letters : 0;
  }
  for (size_t i = 0; i < t.size(); ++i) {
    if (t[i] == '.') {
      for (int64_t j = 0; j < e; ++j) ids.push_back(kEllipsisBase + int(ell_rank - e + j));
      i += 2;
    } else {
      ids.push_back(int(static_cast<unsigned char>(t[i])));
    }
  }
  return ids;
}

Parsed parse_equation(const std::string& equation, const std::vector<int64_t>& ranks, const Node& node) {
  std::string eq;
  for (char ch : equation)
    if (!std::isspace(static_cast<unsigned char>(ch))) eq += ch;
  const size_t arrow = eq.find("->");
  const std::string lhs = eq.substr(0, arrow);
  std::vector<std::string> terms;
  for (size_t start = 0;;) {
    size_t comma = lhs.find(',', start);
    terms.push_back(lhs.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  DEEPEP_CHECK(terms.size() == ranks.size(), node.describe(), ": equation '", equation, "' has ", terms.size(),
               " operand terms but the node has ", ranks.size(), " inputs");
  // Rank of the broadcast ellipsis: the largest over operands.
  int64_t ell_rank = 0;
  for (size_t k = 0; k < terms.size(); ++k) {
    int64_t letters = 0;
    bool ell = terms[k].find("...") != std::string::npos;
    for (char ch : terms[k]) letters += std::isalpha(static_cast<unsigned char>(ch)) ? 1 : 0;
    if (ell) ell_rank = std::max(ell_rank, ranks[k] - letters);
  }
  Parsed p;
  bool any_ellipsis = false;
  for (size_t k = 0; k < terms.size(); ++k) {
    bool e = false;
    p.in.push_back(parse_term(terms[k], ranks[k], ell_rank, false, node, &e));
    any_ellipsis |= e;
  }
  if (arrow != std::string::npos) {
    const std::string rhs = eq.substr(arrow + 2);
    DEEPEP_CHECK(rhs.find("->") == std::string::npos, node.describe(), ": equation '", equation,
                 "' has more than one '->'");
    p.out = parse_term(rhs, 0, ell_rank, true, node);
    for (size_t i = 0; i < p.out.size(); ++i) {
      bool found = false;
      for (const auto& in : p.in) found |= std::find(in.begin(), in.end(), p.out[i]) != in.end();
      DEEPEP_CHECK(found || p.out[i] >= kEllipsisBase, node.describe(), ": output label '", char(p.out[i]),
                   "' of equation '", equation, "' is not in any input");
      DEEPEP_CHECK(std::count(p.out.begin(), p.out.end(), p.out[i]) == 1, node.describe(),
                   ": output label '", char(p.out[i]), "' is repeated in equation '", equation, "'");
    }
  } else {
    for (int64_t j = 0; j < ell_rank && any_ellipsis; ++j) p.out.push_back(kEllipsisBase + int(j));
    std::map<int, int> count;
    for (const auto& in : p.in)
      for (int id : in)
        if (id < kEllipsisBase) ++count[id];
    for (const auto& [id, c] : count)  // std::map: ASCII order
      if (c == 1) p.out.push_back(id);
  }
  return p;
}

template <class A>
std::vector<A> operand_values(const Tensor& t, const char* what) {
  std::vector<A> v(size_t(t.numel()));
  dispatch_numeric(t.dtype(), what, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* p = t.data<T>();
    for (size_t i = 0; i < v.size(); ++i) {
      if constexpr (std::is_same_v<A, double>) v[i] = double(p[i]);
      else v[i] = A(static_cast<int64_t>(p[i]));
    }
  });
  return v;
}

template <class A>
void einsum_typed(KernelContext& ctx, const Parsed& p, Tensor& y) {
  const size_t nops = p.in.size();
  // Sizes of every label (broadcasting 1s).
  std::map<int, int64_t> size;
  for (size_t k = 0; k < nops; ++k) {
    const Tensor& t = ctx.input(int(k));
    for (size_t a = 0; a < p.in[k].size(); ++a) {
      const int id = p.in[k][a];
      const int64_t d = t.dim(int(a));
      auto it = size.find(id);
      if (it == size.end() || it->second == 1) size[id] = d;
      else
        DEEPEP_CHECK(d == it->second || d == 1, ctx.node.describe(), ": label '",
                     id < kEllipsisBase ? std::string(1, char(id)) : std::string("..."), "' has sizes ", it->second,
                     " and ", d, " in different operands");
    }
  }
  // Loop dims: output labels, then the summed ones.
  std::vector<int> loop = p.out;
  for (const auto& [id, s] : size)
    if (std::find(loop.begin(), loop.end(), id) == loop.end()) loop.push_back(id);
  const size_t nd = loop.size(), nout = p.out.size();
  std::vector<int64_t> dims(nd);
  for (size_t i = 0; i < nd; ++i) dims[i] = size.count(loop[i]) ? size[loop[i]] : 1;
  // stride[i * nops + k]: step of operand k's offset along loop dim i.
  std::vector<int64_t> stride(nd * nops, 0);
  for (size_t k = 0; k < nops; ++k) {
    const Tensor& t = ctx.input(int(k));
    auto st = strides_of(t.shape());
    for (size_t a = 0; a < p.in[k].size(); ++a) {
      if (t.dim(int(a)) == 1) continue;  // broadcast
      const size_t i = size_t(std::find(loop.begin(), loop.end(), p.in[k][a]) - loop.begin());
      stride[i * nops + k] += st[a];
    }
  }
  Shape out_shape(dims.begin(), dims.begin() + long(nout));
  int64_t inner = 1;
  for (size_t i = nout; i < nd; ++i) inner *= dims[i];
  std::vector<std::vector<A>> vals;
  for (size_t k = 0; k < nops; ++k) vals.push_back(operand_values<A>(ctx.input(int(k)), ctx.op()));
  const int64_t out_n = shape_numel(out_shape);
  std::vector<A> acc(size_t(out_n), A(0));
  const int64_t total = out_n * inner;
  std::vector<int64_t> idx(nd, 0), off(nops, 0);
  for (int64_t it = 0; it < total; ++it) {
    A prod = A(1);
    for (size_t k = 0; k < nops; ++k) prod *= vals[k][size_t(off[k])];
    acc[size_t(it / inner)] += prod;
    for (size_t d = nd; d-- > 0;) {
      if (++idx[d] < dims[d]) {
        for (size_t k = 0; k < nops; ++k) off[k] += stride[d * nops + k];
        break;
      }
      for (size_t k = 0; k < nops; ++k) off[k] -= stride[d * nops + k] * (dims[d] - 1);
      idx[d] = 0;
    }
  }
  y = Tensor(ctx.input(0).dtype(), out_shape);
  dispatch_numeric(y.dtype(), ctx.op(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* o = y.data<T>();
    for (int64_t i = 0; i < out_n; ++i) {
      if constexpr (std::is_same_v<T, float16> || std::is_same_v<T, bfloat16>) o[i] = T(float(acc[size_t(i)]));
      else o[i] = static_cast<T>(acc[size_t(i)]);
    }
  });
}

void run_einsum(KernelContext& ctx) {
  DEEPEP_CHECK(ctx.node.has_attr("equation"), ctx.node.describe(), ": attribute equation is required");
  DEEPEP_CHECK(ctx.num_inputs() >= 1, ctx.node.describe(), ": needs at least one input");
  std::vector<int64_t> ranks;
  const DType dt = ctx.input(0).dtype();
  for (int k = 0; k < ctx.num_inputs(); ++k) {
    const Tensor& t = ctx.input(k);
    DEEPEP_CHECK(t.dtype() == dt, ctx.node.describe(), ": input dtypes differ (", dtype_name(dt), " vs ",
                 dtype_name(t.dtype()), ")");
    ranks.push_back(t.rank());
  }
  const Parsed p = parse_equation(ctx.node.attr_string("equation", ""), ranks, ctx.node);
  Tensor y;
  dispatch_numeric(dt, ctx.op(), [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (is_floating_v<T>) einsum_typed<double>(ctx, p, y);
    else if constexpr (std::is_signed_v<T>) einsum_typed<int64_t>(ctx, p, y);
    else einsum_typed<uint64_t>(ctx, p, y);
  });
  ctx.set_output(0, std::move(y));
}

void infer_einsum(InferContext& ctx) {
  if (!ctx.has_input(0)) return;
  const DType dt = ctx.input(0).dtype;
  std::vector<int64_t> ranks;
  for (size_t k = 0; k < ctx.inputs.size(); ++k) {
    if (!ctx.inputs[k] || !ctx.inputs[k]->shape) {
      ctx.set(0, dt, std::nullopt);
      return;
    }
    ranks.push_back(int64_t(ctx.inputs[k]->shape->size()));
  }
  const Parsed p = parse_equation(ctx.node.attr_string("equation", ""), ranks, ctx.node);
  std::map<int, Dim> dim;
  for (size_t k = 0; k < p.in.size(); ++k)
    for (size_t a = 0; a < p.in[k].size(); ++a) {
      const Dim& d = (*ctx.inputs[k]->shape)[a];
      auto it = dim.find(p.in[k][a]);
      // Prefer a dim that is not a broadcast 1, and a known one over a symbol.
      if (it == dim.end() || (it->second.is_known() && it->second.value == 1) ||
          (!it->second.is_known() && d.is_known() && d.value != 1))
        dim[p.in[k][a]] = d;
    }
  SymShape out;
  for (int id : p.out) out.push_back(dim.count(id) ? dim[id] : Dim::known(1));
  ctx.set(0, dt, out);
}

}  // namespace
}  // namespace deepep::ops

using namespace deepep;
using namespace deepep::ops;

DEEPEP_DEFINE_OP(Einsum) {
  def.infer = infer_einsum;
  def.reference = run_einsum;
}
