// Elementwise fusion (level 3): chains and DAGs of elementwise and broadcast
// ops become one deepep.FusedElementwise node, whose kernel evaluates the
// whole expression per output element in one pass over cache-sized tiles.
//
// Rewrites: float32/float16/bfloat16 Add, Sub, Mul, Div, Pow (exponent of the
// base's type, or a constant scalar of any numeric type), Max/Min of two,
// Neg, Abs, Reciprocal, Relu, LeakyRelu, Elu, Sigmoid, HardSigmoid, HardSwish,
// Tanh, Erf, Exp, Log, Sqrt, Floor, Ceil, Sin, Cos, Softplus, Softsign, Gelu,
// Clip (constant bounds), Where (bool mask), Cast between float types and
// Identity. Scalar constants become immediates of the program; other inputs
// (bias vectors, masks, activations) are read with broadcasting.
//
// Groups grow from a root (visited last node first) backwards over producers.
// A producer whose output is read only inside the group becomes internal (its
// output is never written). One whose output is also read elsewhere is either
// materialized (an extra output of the fused node; needs the group's output
// shape, and every outside reader after the root, where the fused node goes)
// or recomputed inside the group (the original node stays), whichever the
// cost model (cost_model.h) prefers; a producer joins only when it raises the
// group's benefit (bytes of traffic saved, recomputation charged), within the
// caps on inputs and program length.
//
// Must not: fuse across ops of any other kind (a reduction, MatMul, Softmax,
// reshape... ends a group: they are never members); fuse float64 (the kernel
// computes in float32) or integer math; change results beyond float rounding
// (each instruction is the op's reference formula, in the same order; 16-bit
// graphs only lose the intermediate roundings to 16 bits); leave a group of
// one node (nothing saved); create a cycle or read a value before it exists
// (materialized outputs must have all outside readers after the root; values
// that an earlier-formed group reads are treated as read at its root).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <unordered_map>
#include <unordered_set>

#include "ir/graph_edit.h"
#include "ir/op_registry.h"
#include "ops/fused_elementwise.h"
#include "ops/op_util.h"
#include "optimizer/cost_model.h"
#include "optimizer/pass.h"
#include "optimizer/pattern.h"

namespace deepep {
namespace {

using fused::EwOp;

bool is_ew_float(DType t) { return t == DType::kFloat32 || t == DType::kFloat16 || t == DType::kBFloat16; }

// One operand of a recipe step: node input i (a register), a constant, or
// the result of an earlier step of the same recipe.
struct Operand {
  enum Kind { kInput, kConst, kLocal } kind = kInput;
  int index = 0;
  float value = 0;
};
struct Step {
  EwOp op;
  std::vector<Operand> args;
};
// How one node becomes instructions. `alias`: the node is the identity on
// input 0 (Identity, Cast to a wider or the same float type): no step.
struct Recipe {
  std::vector<Step> steps;
  bool alias = false;
  std::vector<int> reads;  // node inputs read as registers
};

Operand input(int i) { return {Operand::kInput, i, 0}; }
Operand imm(float v) { return {Operand::kConst, 0, v}; }

// Input i as an operand: an immediate when it is a constant scalar whose rank
// does not widen the output, else a register.
std::optional<Operand> value_operand(const Node& n, int i, DType want) {
  if (i >= int(n.inputs.size()) || !n.inputs[size_t(i)]) return std::nullopt;
  const Value* v = n.inputs[size_t(i)];
  if (v->dtype != want) return std::nullopt;
  const Tensor* c = opt::constant_of(v);
  const Value* out = n.outputs[0];
  if (c && c->numel() == 1 && out->shape && c->rank() <= int(out->shape->size()))
    return imm(float(c->get_double(0)));
  if (!v->shape) return std::nullopt;
  return input(i);
}

// A constant scalar operand of any numeric type whose value is exactly a float.
std::optional<float> exact_scalar(const Value* v) {
  const Tensor* c = opt::constant_of(v);
  if (!c || c->numel() != 1 || c->dtype() == DType::kBool || dtype_size(c->dtype()) == 0) return std::nullopt;
  const double d = c->get_double(0);
  if (double(float(d)) != d && !std::isnan(d)) return std::nullopt;
  return float(d);
}

float round_to(DType t, float v) {
  if (t == DType::kFloat16) return float(float16(v));
  if (t == DType::kBFloat16) return float(bfloat16(v));
  return v;
}

std::optional<EwOp> unary_op(const std::string& op) {
  static const std::unordered_map<std::string, EwOp> kUnary = {
      {"Neg", EwOp::kNeg},         {"Abs", EwOp::kAbs},         {"Reciprocal", EwOp::kReciprocal},
      {"Relu", EwOp::kRelu},       {"Sigmoid", EwOp::kSigmoid}, {"Tanh", EwOp::kTanh},
      {"Erf", EwOp::kErf},         {"Exp", EwOp::kExp},         {"Log", EwOp::kLog},
      {"Sqrt", EwOp::kSqrt},       {"Floor", EwOp::kFloor},     {"Ceil", EwOp::kCeil},
      {"Sin", EwOp::kSin},         {"Cos", EwOp::kCos},         {"Softplus", EwOp::kSoftplus},
      {"Softsign", EwOp::kSoftsign}, {"HardSwish", EwOp::kHardSwish}};
  auto it = kUnary.find(op);
  if (it == kUnary.end()) return std::nullopt;
  return it->second;
}

std::optional<EwOp> binary_op(const std::string& op) {
  static const std::unordered_map<std::string, EwOp> kBinary = {
      {"Add", EwOp::kAdd}, {"Sub", EwOp::kSub}, {"Mul", EwOp::kMul}, {"Div", EwOp::kDiv},
      {"Max", EwOp::kMax}, {"Min", EwOp::kMin}};
  auto it = kBinary.find(op);
  if (it == kBinary.end()) return std::nullopt;
  return it->second;
}

// The recipe for `n`, or nullopt when n cannot be fused.
std::optional<Recipe> recipe_for(const Node& n) {
  if (!n.domain.empty() || n.outputs.size() != 1 || !n.outputs[0]) return std::nullopt;
  const Value* out = n.outputs[0];
  const DType t = out->dtype;
  if (!is_ew_float(t) || !out->shape) return std::nullopt;
  const std::string& op = n.op_type;
  const int nin = int(n.inputs.size());
  Recipe r;
  auto one = [&](EwOp e, std::vector<std::optional<Operand>> args) -> std::optional<Recipe> {
    Step s{e, {}};
    for (auto& a : args) {
      if (!a) return std::nullopt;
      s.args.push_back(*a);
    }
    r.steps.push_back(std::move(s));
    return r;
  };
  std::optional<Recipe> res;
  if (auto b = binary_op(op)) {
    if (nin != 2) return std::nullopt;
    res = one(*b, {value_operand(n, 0, t), value_operand(n, 1, t)});
  } else if (op == "Pow") {
    if (nin != 2 || !n.inputs[1]) return std::nullopt;
    if (n.inputs[1]->dtype == t) res = one(EwOp::kPow, {value_operand(n, 0, t), value_operand(n, 1, t)});
    else if (auto e = exact_scalar(n.inputs[1])) res = one(EwOp::kPowF64, {value_operand(n, 0, t), imm(*e)});
  } else if (auto u = unary_op(op)) {
    if (nin != 1) return std::nullopt;
    res = one(*u, {value_operand(n, 0, t)});
  } else if (op == "Gelu") {
    const std::string a = n.attr_string("approximate", "none");
    if (nin != 1 || (a != "none" && a != "tanh")) return std::nullopt;
    res = one(a == "none" ? EwOp::kGelu : EwOp::kGeluTanh, {value_operand(n, 0, t)});
  } else if (op == "LeakyRelu" || op == "Elu") {
    if (nin != 1) return std::nullopt;
    const float alpha = n.attr_float("alpha", op == "Elu" ? 1.0f : 0.01f);
    res = one(op == "Elu" ? EwOp::kElu : EwOp::kLeakyRelu, {value_operand(n, 0, t), imm(alpha)});
  } else if (op == "HardSigmoid") {
    if (nin != 1) return std::nullopt;
    res = one(EwOp::kHardSigmoid, {value_operand(n, 0, t), imm(n.attr_float("alpha", 0.2f)),
                                   imm(n.attr_float("beta", 0.5f))});
  } else if (op == "Clip") {
    if (nin < 1) return std::nullopt;
    float lo = -std::numeric_limits<float>::infinity(), hi = std::numeric_limits<float>::infinity();
    const bool attr_form = (n.opset > 0 && n.opset < 11) || (nin == 1 && (n.has_attr("min") || n.has_attr("max")));
    if (attr_form) {
      if (nin != 1) return std::nullopt;
      if (n.has_attr("min")) lo = round_to(t, n.attr_float("min", 0));
      if (n.has_attr("max")) hi = round_to(t, n.attr_float("max", 0));
    } else {
      for (int i = 1; i < nin && i <= 2; ++i) {
        const Value* b = n.inputs[size_t(i)];
        if (!b) continue;
        const Tensor* c = opt::constant_of(b);
        if (!c || c->dtype() != t || c->numel() != 1) return std::nullopt;
        (i == 1 ? lo : hi) = float(c->get_double(0));
      }
      if (nin > 3) return std::nullopt;
    }
    res = one(EwOp::kClip, {value_operand(n, 0, t), imm(lo), imm(hi)});
  } else if (op == "Where") {
    if (nin != 3 || !n.inputs[0] || n.inputs[0]->dtype != DType::kBool) return std::nullopt;
    std::optional<Operand> c;
    if (const Tensor* k = opt::constant_of(n.inputs[0]); k && k->numel() == 1 && k->rank() <= int(out->shape->size()))
      c = imm(k->data<bool>()[0] ? 1.0f : 0.0f);
    else if (n.inputs[0]->shape) c = input(0);
    res = one(EwOp::kWhere, {c, value_operand(n, 1, t), value_operand(n, 2, t)});
  } else if (op == "Cast") {
    if (nin != 1 || !n.inputs[0] || !is_ew_float(n.inputs[0]->dtype) || !n.inputs[0]->shape) return std::nullopt;
    const DType from = n.inputs[0]->dtype;
    if (t == from || t == DType::kFloat32) {
      r.alias = true;
      res = r;
    } else {
      res = one(t == DType::kFloat16 ? EwOp::kToFloat16 : EwOp::kToBFloat16, {input(0)});
    }
  } else if (op == "Identity") {
    if (nin != 1 || !n.inputs[0] || n.inputs[0]->dtype != t || !n.inputs[0]->shape) return std::nullopt;
    r.alias = true;
    res = r;
  }
  if (!res) return std::nullopt;
  if (res->alias) res->reads = {0};
  for (const Step& s : res->steps)
    for (const Operand& a : s.args)
      if (a.kind == Operand::kInput && std::find(res->reads.begin(), res->reads.end(), a.index) == res->reads.end())
        res->reads.push_back(a.index);
  return res;
}

double recipe_flops(const Recipe& r) {
  double f = 0;
  for (const Step& s : r.steps) f += opt::instruction_flops(s.op);
  return f;
}

enum class Mode { kInternal, kMaterialized, kRecomputed };

class Fuser {
 public:
  Fuser(Graph& g, PassContext& ctx) : g_(g), ctx_(ctx), uses_(g) {
    for (const auto& n : g.nodes()) {
      pos_[n.get()] = n->id;
      if (auto r = recipe_for(*n)) recipes_.emplace(n.get(), std::move(*r));
    }
  }

  bool run();

 private:
  struct Group {
    Node* root = nullptr;
    std::vector<Node*> order;  // members as added
    std::unordered_map<const Node*, Mode> mode;
  };

  const Recipe* recipe(const Node* n) const {
    auto it = recipes_.find(n);
    return it == recipes_.end() ? nullptr : &it->second;
  }
  bool produced_in(const Group& gr, const Value* v) const {
    return v && v->producer && gr.mode.count(v->producer) && v->producer->outputs[0] == v;
  }
  // The group's external inputs, in first-read order (members by position).
  std::vector<Value*> inputs_of(const Group& gr) const;
  std::vector<Node*> by_position(const Group& gr) const;
  std::optional<opt::GroupCost> measure(const Group& gr) const;
  // Whether producer p of one of gr's inputs, joining gr, provably computes
  // the root's whole shape (so the kernel can write it as an output).
  bool fills_root(const Group& gr, const Node* p) const;
  // Positions of the reads of v outside gr (INT_MAX: a graph output); empty
  // when v is read only by gr's internal and materialized members.
  std::vector<int> outside_reads(const Group& gr, const Value* v) const;
  Group grow(Node* root);
  void rewrite(const Group& gr);

  Graph& g_;
  PassContext& ctx_;
  UseIndex uses_;
  opt::ElementwiseCostModel model_;
  std::unordered_map<const Node*, int> pos_;
  std::unordered_map<const Node*, Recipe> recipes_;
  std::unordered_set<const Node*> assigned_;
  // Values read by the fused nodes of groups already formed, at their roots.
  std::unordered_map<const Value*, std::vector<int>> late_reads_;
};

std::vector<Node*> Fuser::by_position(const Group& gr) const {
  std::vector<Node*> v = gr.order;
  std::sort(v.begin(), v.end(), [&](Node* a, Node* b) { return pos_.at(a) < pos_.at(b); });
  return v;
}

std::vector<Value*> Fuser::inputs_of(const Group& gr) const {
  std::vector<Value*> ins;
  for (Node* m : by_position(gr))
    for (int i : recipe(m)->reads) {
      Value* v = m->inputs[size_t(i)];
      if (!produced_in(gr, v) && std::find(ins.begin(), ins.end(), v) == ins.end()) ins.push_back(v);
    }
  return ins;
}

std::vector<int> Fuser::outside_reads(const Group& gr, const Value* v) const {
  std::vector<int> at;
  if (uses_.is_output(v)) at.push_back(std::numeric_limits<int>::max());
  for (const Use& u : uses_.uses(v)) {
    auto m = gr.mode.find(u.node);
    if (m != gr.mode.end() && m->second != Mode::kRecomputed && u.input >= 0) continue;  // inside
    if (m == gr.mode.end() && assigned_.count(u.node)) continue;  // an earlier group: see late_reads_
    at.push_back(pos_.at(u.node));
  }
  if (auto it = late_reads_.find(v); it != late_reads_.end()) at.insert(at.end(), it->second.begin(), it->second.end());
  return at;
}

std::optional<opt::GroupCost> Fuser::measure(const Group& gr) const {
  opt::GroupCost c;
  const Value* out = gr.root->outputs[0];
  const auto root_elems = opt::nominal_elements(out->shape);
  if (!root_elems) return std::nullopt;
  // The kernel's output shape is the broadcast of its inputs. The root's shape
  // is that broadcast with the immediates' shapes too, and immediates have
  // one element, so the two agree exactly when the inputs reach the root's rank.
  size_t rank = 0;
  const std::vector<Value*> ins = inputs_of(gr);
  for (const Value* v : ins) {
    const auto b = opt::nominal_bytes(v);
    if (!b || !v->shape) return std::nullopt;
    c.fused_bytes += *b;
    rank = std::max(rank, v->shape->size());
  }
  if (ins.empty() || rank != out->shape->size()) return std::nullopt;
  c.inputs = int(ins.size());
  for (Node* m : gr.order) {
    const Recipe& r = *recipe(m);
    const Mode mode = gr.mode.at(m);
    const Value* mo = m->outputs[0];
    const auto mb = opt::nominal_bytes(mo);
    const auto me = opt::nominal_elements(mo->shape);
    if (!mb || !me) return std::nullopt;
    c.program_length += int(r.steps.size());
    if (mode == Mode::kMaterialized || m == gr.root) c.fused_bytes += *mb;
    if (mode == Mode::kRecomputed) {
      c.extra_flops += recipe_flops(r) * *root_elems;
      continue;
    }
    ++c.nodes_replaced;
    c.extra_flops += recipe_flops(r) * std::max(0.0, *root_elems - *me);
    c.unfused_bytes += *mb;
    for (int i : r.reads) {
      const auto b = opt::nominal_bytes(m->inputs[size_t(i)]);
      if (!b) return std::nullopt;
      c.unfused_bytes += *b;
    }
  }
  return c;
}

// `small` broadcasts into `big` for certain: each of its dims is 1 or the
// same known size or symbol as big's.
bool broadcasts_into(const std::optional<SymShape>& small, const std::optional<SymShape>& big) {
  if (!small || !big || small->size() > big->size()) return false;
  const size_t off = big->size() - small->size();
  for (size_t i = 0; i < small->size(); ++i) {
    const Dim& s = (*small)[i];
    const Dim& b = (*big)[off + i];
    if (s.is_known() && s.value == 1) continue;
    if (!(s.is_known() || s.is_symbol()) || !(s == b)) return false;
  }
  return true;
}

bool Fuser::fills_root(const Group& gr, const Node* p) const {
  const Value* out = p->outputs[0];
  const Value* root = gr.root->outputs[0];
  if (opt::same_shape(out->shape, root->shape)) return true;
  if (!out->shape || !root->shape || out->shape->size() != root->shape->size()) return false;
  // At run time p's shape is the broadcast of the group inputs it depends on,
  // the root's that of all group inputs: equal when each of the others
  // broadcasts into p's shape. (Absorbing producers later keeps this: a
  // node's inputs broadcast into its output.)
  std::unordered_set<const Value*> feeding;
  std::vector<const Node*> stack = {p};
  std::unordered_set<const Node*> seen;
  while (!stack.empty()) {
    const Node* n = stack.back();
    stack.pop_back();
    if (!seen.insert(n).second) continue;
    for (int i : recipe(n)->reads) {
      const Value* v = n->inputs[size_t(i)];
      if (produced_in(gr, v)) stack.push_back(v->producer);
      else feeding.insert(v);
    }
  }
  for (const Value* v : inputs_of(gr))
    if (v != out && !feeding.count(v) && !broadcasts_into(v->shape, out->shape)) return false;
  return true;
}

Fuser::Group Fuser::grow(Node* root) {
  Group gr;
  gr.root = root;
  gr.order = {root};
  gr.mode[root] = Mode::kInternal;
  const int root_pos = pos_.at(root);
  auto cost = measure(gr);
  if (!cost) return gr;
  double best = model_.benefit(*cost);
  for (bool grew = true; grew;) {
    grew = false;
    for (Value* v : inputs_of(gr)) {
      Node* p = v->producer;
      if (!p || p->outputs[0] != v || !recipe(p) || assigned_.count(p) || gr.mode.count(p)) continue;
      const std::vector<int> outside = outside_reads(gr, v);
      std::vector<Mode> options;
      if (outside.empty()) {
        options.push_back(Mode::kInternal);
      } else {
        const bool after_root =
            std::all_of(outside.begin(), outside.end(), [&](int at) { return at > root_pos; });
        if (after_root && fills_root(gr, p)) options.push_back(Mode::kMaterialized);
        options.push_back(Mode::kRecomputed);
      }
      std::optional<Mode> pick;
      for (Mode m : options) {
        gr.order.push_back(p);
        gr.mode[p] = m;
        const auto c = measure(gr);
        if (c && model_.within_caps(*c) && model_.benefit(*c) > best) {
          best = model_.benefit(*c);
          pick = m;
        }
        gr.order.pop_back();
        gr.mode.erase(p);
      }
      if (pick) {
        gr.order.push_back(p);
        gr.mode[p] = *pick;
        grew = true;
        break;  // the inputs changed: start over
      }
    }
  }
  return gr;
}

void Fuser::rewrite(const Group& gr) {
  const std::vector<Node*> members = by_position(gr);
  const std::vector<Value*> ins = inputs_of(gr);
  fused::EwProgram prog;
  prog.num_inputs = int(ins.size());
  std::unordered_map<const Value*, int> reg;
  for (size_t i = 0; i < ins.size(); ++i) reg[ins[i]] = int(i);
  auto constant = [&](float v) {
    for (size_t k = 0; k < prog.consts.size(); ++k)
      if (std::memcmp(&prog.consts[k], &v, sizeof v) == 0) return -1 - int(k);
    prog.consts.push_back(v);
    return -int(prog.consts.size());
  };
  for (Node* m : members) {
    const Recipe& r = *recipe(m);
    if (r.alias) {
      reg[m->outputs[0]] = reg.at(m->inputs[0]);
      continue;
    }
    std::vector<int> local;
    for (const Step& s : r.steps) {
      fused::EwInstr instr;
      instr.op = s.op;
      for (size_t j = 0; j < s.args.size(); ++j) {
        const Operand& a = s.args[j];
        instr.args[j] = a.kind == Operand::kInput   ? reg.at(m->inputs[size_t(a.index)])
                      : a.kind == Operand::kConst ? constant(a.value)
                                                  : local.at(size_t(a.index));
      }
      prog.code.push_back(instr);
      local.push_back(prog.num_inputs + int(prog.code.size()) - 1);
    }
    reg[m->outputs[0]] = local.back();
  }
  std::vector<Value*> outs = {gr.root->outputs[0]};
  for (Node* m : members)
    if (gr.mode.at(m) == Mode::kMaterialized) outs.push_back(m->outputs[0]);
  for (Value* v : outs) {
    prog.outputs.push_back(reg.at(v));
    prog.out_dtypes.push_back(v->dtype);
  }
  std::string name = gr.root->name;
  for (Node* m : members)
    if (gr.mode.at(m) != Mode::kRecomputed) m->outputs[0] = nullptr;
  Node* f = insert_node_before(g_, gr.root, "FusedElementwise", ins, outs, kDeepepDomain);
  f->name = name;
  f->opset = 1;
  prog.to_node(*f);
  for (Node* m : members)  // a recomputed member also stays as its own node
    if (gr.mode.at(m) != Mode::kRecomputed) absorb(*f, *m);
  int recomputed = 0, materialized = 0;
  for (Node* m : members) {
    recomputed += gr.mode.at(m) == Mode::kRecomputed;
    materialized += gr.mode.at(m) == Mode::kMaterialized;
  }
  ctx_.count("groups");
  ctx_.count("nodes_fused", int64_t(members.size()) - recomputed);
  ctx_.count("recomputed", recomputed);
  ctx_.count("materialized", materialized);
}

bool Fuser::run() {
  std::vector<Group> groups;
  const auto& nodes = g_.nodes();
  for (size_t i = nodes.size(); i-- > 0;) {
    Node* n = nodes[i].get();
    if (!recipe(n) || assigned_.count(n)) continue;
    Group gr = grow(n);
    int replaced = 0, steps = 0;
    for (Node* m : gr.order) {
      replaced += gr.mode.at(m) != Mode::kRecomputed;
      steps += int(recipe(m)->steps.size());
    }
    if (replaced < 2 || steps == 0) continue;
    for (Node* m : gr.order)
      if (gr.mode.at(m) != Mode::kRecomputed) assigned_.insert(m);
    const int at = pos_.at(gr.root);
    for (const Value* v : inputs_of(gr)) late_reads_[v].push_back(at);
    groups.push_back(std::move(gr));
  }
  if (groups.empty()) return false;
  std::unordered_set<const Node*> dead;
  for (const Group& gr : groups) {
    rewrite(gr);
    for (Node* m : gr.order)
      if (gr.mode.at(m) != Mode::kRecomputed) dead.insert(m);
  }
  remove_nodes(g_, dead);
  return true;
}

bool run(Graph& g, PassContext& ctx) { return Fuser(g, ctx).run(); }

}  // namespace

std::unique_ptr<Pass> make_elementwise_fusion() {
  return std::make_unique<FunctionPass>("elementwise_fusion", 3, run);
}

}  // namespace deepep
