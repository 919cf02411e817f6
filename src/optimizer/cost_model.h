// The cost model of the level-3 fusions: whether running a group of
// elementwise/broadcast nodes as one deepep.FusedElementwise kernel beats
// running them one by one.
//
// Elementwise kernels are bound by memory traffic, so the model counts bytes:
// unfused, every node reads its inputs and writes its output; fused, the group
// reads each distinct external input once and writes only the values read
// outside it. Against those saved bytes it weighs recomputation: a fused group
// evaluates every member once per element of the group's output, so a member
// of a smaller (broadcast) shape, or one duplicated because its value is also
// needed outside (when that is cheaper than writing it out), does extra
// arithmetic. Each kernel launch saved is worth a fixed amount of traffic.
//
// Shapes may be symbolic or partly unknown: such a dimension counts as
// kSymbolicDim elements, which is enough to rank choices (the same dimensions
// appear on both sides of each comparison).
#pragma once
#include <optional>

#include "ir/graph.h"
#include "ops/fused_elementwise.h"

namespace deepep::opt {

// Elements a symbolic or unknown dimension is assumed to have.
inline constexpr double kSymbolicDim = 128;

// Elements of a shape under that assumption; nullopt when the rank is unknown.
std::optional<double> nominal_elements(const std::optional<SymShape>& s);
// Bytes of a value (nominal elements times the element size); nullopt when
// its rank is not known.
std::optional<double> nominal_bytes(const Value* v);

// Arithmetic per element of one instruction, in simple-op units (an add is 1,
// exp/erf/tanh are ~10-20, pow ~30).
double instruction_flops(fused::EwOp op);

// What a candidate group costs, as the fusion pass measures it.
struct GroupCost {
  double unfused_bytes = 0;  // members run one by one: inputs read + outputs written
  double fused_bytes = 0;    // one kernel: distinct external inputs read + group outputs written
  double extra_flops = 0;    // arithmetic beyond the unfused nodes' (broadcast or duplicated members)
  int nodes_replaced = 0;    // member nodes the fused node replaces (duplicated ones stay)
  int inputs = 0;            // the fused node's inputs
  int program_length = 0;    // its instructions
};

struct ElementwiseCostModel {
  // A flop of recomputation costs as much as this many bytes of traffic (a
  // core does several simple ops in the time it moves a float from DRAM).
  double bytes_per_flop = 0.5;
  // A kernel launch (dispatch, tensor allocation, output bookkeeping) saved is
  // worth this many bytes.
  double launch_bytes = 4096;
  // Caps: more inputs spread the tile loads over too many streams; a longer
  // program spills the tile registers out of L1/L2.
  int max_inputs = 8;
  int max_program = 64;

  bool within_caps(const GroupCost& c) const {
    return c.inputs <= max_inputs && c.program_length <= max_program;
  }
  // Traffic saved (in bytes, recomputation converted): > 0 means fuse.
  double benefit(const GroupCost& c) const {
    return c.unfused_bytes - c.fused_bytes - bytes_per_flop * c.extra_flops +
           launch_bytes * double(c.nodes_replaced - 1);
  }
};

}  // namespace deepep::opt
