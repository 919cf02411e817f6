// deepep.FusedElementwise: a chain (or DAG) of elementwise and broadcast ops
// run as one kernel. The node holds a small expression program over its N
// broadcastable inputs and evaluates it per output element, in one pass over
// cache-sized tiles of the output, in float32 (float16/bfloat16/bool inputs
// are converted on load; each output is rounded to its dtype on store).
//
// The program, as the node's attributes:
//   ops        strings  one instruction name per instruction (see kEwOps)
//   args       ints     the operands of every instruction, in order, as many
//                       as its op's arity: r >= 0 is register r, r < 0 is the
//                       constant consts[-1 - r]. Registers 0..N-1 are the
//                       inputs; instruction k's result is register N + k, and
//                       an instruction reads only registers defined before it.
//   consts     floats   scalar constants
//   outputs    ints     for each node output, the register it holds
//   out_dtypes ints     for each node output, its dtype (ONNX code: float32,
//                       float16 or bfloat16)
// Every output has the broadcast shape of all inputs.
//
// Each instruction computes exactly what the ONNX op's reference kernel
// computes in float (same formula, same order), so a fused float32 chain gives
// the unfused chain's results; for 16-bit types only the intermediate
// roundings to 16 bits disappear.
#pragma once
#include <array>
#include <optional>
#include <string_view>
#include <vector>

#include "deepep/dtype.h"
#include "ir/graph.h"

namespace deepep::fused {

enum class EwOp : uint8_t {
  // binary
  kAdd, kSub, kMul, kDiv, kPow, kPowF64, kMax, kMin,
  // unary
  kNeg, kAbs, kReciprocal, kRelu, kSigmoid, kTanh, kErf, kExp, kLog, kSqrt, kFloor, kCeil,
  kSin, kCos, kSoftplus, kSoftsign, kHardSwish, kGelu, kGeluTanh, kToFloat16, kToBFloat16,
  // with parameters
  kLeakyRelu,    // (x, alpha)
  kElu,          // (x, alpha)
  kHardSigmoid,  // (x, alpha, beta)
  kClip,         // (x, lo, hi): lo/hi of -inf/+inf clip nothing
  kWhere,        // (cond, x, y): cond != 0 ? x : y
  kCount
};

struct EwOpInfo {
  EwOp op;
  const char* name;  // the attribute spelling: "Add", "PowF64", "ToFloat16", ...
  int arity;
};
// Indexed by EwOp.
extern const EwOpInfo kEwOps[size_t(EwOp::kCount)];
inline const EwOpInfo& ew_info(EwOp op) { return kEwOps[size_t(op)]; }
std::optional<EwOp> ew_op_from_name(std::string_view name);

struct EwInstr {
  EwOp op = EwOp::kAdd;
  std::array<int, 3> args{};  // first `arity` used
};

struct EwProgram {
  int num_inputs = 0;
  std::vector<EwInstr> code;
  std::vector<float> consts;
  std::vector<int> outputs;
  std::vector<DType> out_dtypes;

  int num_registers() const { return num_inputs + int(code.size()); }
  // Reads the program from n's attributes and checks it (operands in range and
  // defined before use, known ops, float output dtypes); throws deepep::Error
  // naming the node.
  static EwProgram from_node(const Node& n);
  // Writes the attributes above onto n (replacing any).
  void to_node(Node& n) const;
  // Human-readable: "r2 = Mul(r0, c0); r3 = Add(r2, r1) -> r3".
  std::string str() const;
};

}  // namespace deepep::fused
