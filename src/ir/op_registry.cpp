#include "ir/op_registry.h"

#include "kernels/cpu/register.h"

#include <algorithm>

namespace deepep {

const char* fusion_kind_name(FusionKind k) {
  switch (k) {
    case FusionKind::kElementwise: return "elementwise";
    case FusionKind::kBroadcast: return "broadcast";
    case FusionKind::kInjective: return "injective";
    case FusionKind::kReduction: return "reduction";
    case FusionKind::kOutputFusable: return "output-fusable";
    case FusionKind::kOpaque: return "opaque";
  }
  return "?";
}

namespace {
std::map<std::string, OpDef> build_table() {
  std::map<std::string, OpDef> table;
#define DEEPEP_OP(NAME, KIND, FLAGS)        \
  {                                         \
    OpDef d;                                \
    d.name = #NAME;                         \
    d.kind = FusionKind::KIND;              \
    d.flags = (FLAGS);                      \
    ops::define_##NAME(d);                  \
    table.emplace(#NAME, std::move(d));     \
  }
#define DEEPEP_FUSED_OP(NAME, KIND, FLAGS)                   \
  {                                                          \
    OpDef d;                                                 \
    d.name = #NAME;                                          \
    d.domain = kDeepepDomain;                                \
    d.kind = FusionKind::KIND;                               \
    d.flags = (FLAGS);                                       \
    ops::define_deepep_##NAME(d);                            \
    table.emplace(std::string(kDeepepDomain) + "." #NAME, std::move(d)); \
  }
#include "ir/ops.def"
#undef DEEPEP_OP
#undef DEEPEP_FUSED_OP
  cpu::register_kernels(table);  // fast CPU kernels (src/kernels/cpu/register.cpp)
  return table;
}
}  // namespace

bool NodeCache::matches(const std::vector<const Tensor*>& inputs, uint64_t environment) const {
  if (signature_.empty() || uint64_t(signature_[0]) != environment) return false;
  size_t at = 1;
  for (const Tensor* t : inputs) {
    if (at >= signature_.size()) return false;
    if (!t) {
      if (signature_[at++] != -1) return false;
      continue;
    }
    const Shape& s = t->shape();
    if (signature_.size() - at < 2 + s.size() || signature_[at] != int64_t(t->dtype()) ||
        signature_[at + 1] != int64_t(s.size()) || !std::equal(s.begin(), s.end(), signature_.begin() + at + 2))
      return false;
    at += 2 + s.size();
  }
  return at == signature_.size();
}

void NodeCache::reset(const std::vector<const Tensor*>& inputs, uint64_t environment) {
  kernel = nullptr;
  plan_.reset();
  plan_type_ = nullptr;
  signature_.assign(1, int64_t(environment));
  for (const Tensor* t : inputs) {
    if (!t) {
      signature_.push_back(-1);
      continue;
    }
    signature_.push_back(int64_t(t->dtype()));
    signature_.push_back(int64_t(t->shape().size()));
    signature_.insert(signature_.end(), t->shape().begin(), t->shape().end());
  }
}

const KernelFn& select_kernel(const OpDef& def, const KernelContext& ctx) {
  NodeCache* cache = def.cpu.empty() ? nullptr : ctx.cache;  // (the reference alone: nothing to choose)
  uint64_t env = 0;
  if (cache) {
    env = cpu::kernel_environment();
    if (cache->kernel && cache->matches(ctx.inputs, env)) return *cache->kernel;
    cache->reset(ctx.inputs, env);  // before supports(), which may keep a plan in it
  }
  const KernelFn* pick = &def.reference;
  for (const FastKernel& k : def.cpu)
    if (!k.supports || k.supports(ctx)) {
      pick = &k.run;
      break;
    }
  if (cache) cache->kernel = pick;
  return *pick;
}

const std::map<std::string, OpDef>& all_ops() {
  static const std::map<std::string, OpDef> table = build_table();
  return table;
}

const OpDef* find_op(const std::string& op_type) { return find_op("", op_type); }

const OpDef* find_op(const std::string& domain, const std::string& op_type) {
  const auto& t = all_ops();
  std::string key;
  if (domain.empty() || domain == "ai.onnx") key = op_type;
  else if (domain == kDeepepDomain) key = domain + "." + op_type;
  else return nullptr;
  auto it = t.find(key);
  return it == t.end() ? nullptr : &it->second;
}

Cost node_cost(const Node& n, const std::vector<Tensor*>& in, const std::vector<Tensor*>& out) {
  std::vector<Shape> is, os;
  double bytes = 0, elems = 0;
  for (auto* t : in) {
    is.push_back(t ? t->shape() : Shape{});
    if (t) bytes += double(t->nbytes());
  }
  for (auto* t : out) {
    os.push_back(t ? t->shape() : Shape{});
    if (t) {
      bytes += double(t->nbytes());
      elems += double(t->numel());
    }
  }
  if (n.def && n.def->cost) return n.def->cost(n, is, os);
  return Cost{elems, bytes};
}

const Tensor& KernelContext::input(int i) const {
  DEEPEP_CHECK(has_input(i), node.describe(), ": required input ", i, " is missing");
  return *inputs[i];
}

namespace {
void check_output_index(const KernelContext& ctx, int i) {
  DEEPEP_CHECK(i >= 0 && size_t(i) < ctx.outputs.size(), ctx.node.describe(), " has ", ctx.outputs.size(),
               " output(s); its kernel produces output ", i);
}
}  // namespace

void KernelContext::set_output(int i, Tensor t) {
  check_output_index(*this, i);
  outputs[size_t(i)] = std::move(t);
}

Tensor& KernelContext::output(int i, DType dtype, const Shape& shape) {
  check_output_index(*this, i);
  outputs[i] = allocator ? allocator->allocate(node, i, dtype, shape) : Tensor(dtype, shape);
  return outputs[i];
}

bool KernelContext::output_requested(int i) const {
  return i < int(node.outputs.size()) && node.outputs[i] != nullptr;
}

const Tensor* InferContext::constant(int i) const {
  if (!has_input(i) || !inputs[i]->data) return nullptr;
  return &*inputs[i]->data;
}

}  // namespace deepep
