#include "frontend/onnx_writer.h"

#include <set>

#include "deepep/error.h"
#include "onnx.pb.h"

namespace deepep {

namespace pb = deepep_onnx;

namespace {

struct Writer {
  const OnnxWriteOptions& opt;

  void tensor_type(pb::TypeProto* tp, const Value& v) {
    auto* tt = tp->mutable_tensor_type();
    tt->set_elem_type(int(v.dtype));
    if (!v.shape) return;
    auto* sh = tt->mutable_shape();
    for (const Dim& d : *v.shape) {
      auto* dp = sh->add_dim();
      if (d.is_known()) dp->set_dim_value(d.value);
      else if (d.is_symbol()) dp->set_dim_param(d.symbol);
    }
  }

  void value_info(pb::ValueInfoProto* vi, const Value& v) {
    vi->set_name(v.name);
    if (v.dtype != DType::kUndefined) tensor_type(vi->mutable_type(), v);
  }

  void tensor(pb::TensorProto* tp, const Tensor& t, const std::string& name) {
    tp->set_name(name);
    tp->set_data_type(int(t.dtype()));
    for (int64_t d : t.shape()) tp->add_dims(d);
    const int bits = dtype_packed_bits(t.dtype());
    if (bits >= 8) {
      tp->set_raw_data(t.raw(), t.nbytes());
      return;
    }
    // Sub-byte types are held one per byte; ONNX packs them, first in the low bits.
    const int per = 8 / bits;
    std::string packed(size_t((t.numel() + per - 1) / per), '\0');
    const auto* in = t.data<uint8_t>();
    for (int64_t i = 0; i < t.numel(); ++i)
      packed[size_t(i / per)] = char(uint8_t(packed[size_t(i / per)]) | uint8_t(in[i] << ((i % per) * bits)));
    tp->set_raw_data(packed);
  }

  void initializer(pb::TensorProto* tp, const Value& v) {
    const Tensor& t = *v.data;
    if (!opt.place_weight) return tensor(tp, t, v.name);
    tp->set_name(v.name);
    tp->set_data_type(int(t.dtype()));
    for (int64_t d : t.shape()) tp->add_dims(d);
    auto [location, offset] = opt.place_weight(v);
    tp->set_data_location(pb::TensorProto::EXTERNAL);
    auto add = [&](const char* k, const std::string& val) {
      auto* e = tp->add_external_data();
      e->set_key(k);
      e->set_value(val);
    };
    add("location", location);
    add("offset", std::to_string(offset));
    add("length", std::to_string(t.nbytes()));
  }

  void attribute(pb::AttributeProto* ap, const std::string& name, const Attribute& a) {
    using A = pb::AttributeProto;
    ap->set_name(name);
    switch (a.kind) {
      case Attribute::Kind::kInt: ap->set_type(A::INT); ap->set_i(a.i); break;
      case Attribute::Kind::kFloat: ap->set_type(A::FLOAT); ap->set_f(a.f); break;
      case Attribute::Kind::kString: ap->set_type(A::STRING); ap->set_s(a.s); break;
      case Attribute::Kind::kInts:
        ap->set_type(A::INTS);
        for (int64_t v : a.ints) ap->add_ints(v);
        break;
      case Attribute::Kind::kFloats:
        ap->set_type(A::FLOATS);
        for (float v : a.floats) ap->add_floats(v);
        break;
      case Attribute::Kind::kStrings:
        ap->set_type(A::STRINGS);
        for (const auto& v : a.strings) ap->add_strings(v);
        break;
      case Attribute::Kind::kTensor: ap->set_type(A::TENSOR); tensor(ap->mutable_t(), a.t, name); break;
      case Attribute::Kind::kGraph:
        ap->set_type(A::GRAPH);
        graph(ap->mutable_g(), *a.graphs.at(0));
        break;
      case Attribute::Kind::kGraphs:
        ap->set_type(A::GRAPHS);
        for (const auto& g : a.graphs) graph(ap->add_graphs(), *g);
        break;
    }
  }

  void graph(pb::GraphProto* gp, const Graph& g) {
    gp->set_name(g.name.empty() ? "main" : g.name);
    for (const auto& v : g.values())
      if (v->data) initializer(gp->add_initializer(), *v);
    for (const Value* v : g.inputs) value_info(gp->add_input(), *v);
    for (const Value* v : g.outputs) value_info(gp->add_output(), *v);
    std::set<const Value*> io(g.inputs.begin(), g.inputs.end());
    io.insert(g.outputs.begin(), g.outputs.end());
    for (const auto& n : g.nodes()) {
      auto* np = gp->add_node();
      np->set_op_type(n->op_type);
      np->set_name(n->name);
      if (!n->domain.empty()) np->set_domain(n->domain);
      for (const Value* v : n->inputs) np->add_input(v ? v->name : "");
      for (const Value* v : n->outputs) {
        np->add_output(v ? v->name : "");
        if (v && !io.count(v) && v->dtype != DType::kUndefined) value_info(gp->add_value_info(), *v);
      }
      for (const auto& [k, a] : n->attrs) attribute(np->add_attribute(), k, a);
    }
  }
};

}  // namespace

std::string write_onnx_bytes(const Graph& g, const OnnxWriteOptions& options) {
  pb::ModelProto mp;
  mp.set_ir_version(10);
  mp.set_producer_name(options.producer);
  auto* os = mp.add_opset_import();
  os->set_domain("");
  os->set_version(options.opset);
  for (const auto& [d, v] : options.extra_opsets) {
    auto* e = mp.add_opset_import();
    e->set_domain(d);
    e->set_version(v);
  }
  Writer w{options};
  w.graph(mp.mutable_graph(), g);
  std::string out;
  DEEPEP_CHECK(mp.SerializeToString(&out), "failed to serialize the graph (over 2 GB of graph data?)");
  return out;
}

}  // namespace deepep
