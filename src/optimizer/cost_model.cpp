#include "optimizer/cost_model.h"

#include "deepep/dtype.h"

namespace deepep::opt {

std::optional<double> nominal_elements(const std::optional<SymShape>& s) {
  if (!s) return std::nullopt;
  double n = 1;
  for (const Dim& d : *s) {
    n *= d.is_known() ? double(d.value) : kSymbolicDim;
  }
  return n;
}

std::optional<double> nominal_bytes(const Value* v) {
  if (!v) return std::nullopt;
  if (v->data) return double(v->data->nbytes());
  const auto n = nominal_elements(v->shape);
  if (!n) return std::nullopt;
  return *n * double(dtype_size(v->dtype));
}

double instruction_flops(fused::EwOp op) {
  using fused::EwOp;
  switch (op) {
    case EwOp::kAdd: case EwOp::kSub: case EwOp::kMul: case EwOp::kMax: case EwOp::kMin:
    case EwOp::kNeg: case EwOp::kAbs: case EwOp::kRelu: case EwOp::kFloor: case EwOp::kCeil:
    case EwOp::kLeakyRelu: case EwOp::kClip: case EwOp::kWhere: case EwOp::kToFloat16:
    case EwOp::kToBFloat16:
      return 1;
    case EwOp::kDiv: case EwOp::kReciprocal: case EwOp::kSqrt: case EwOp::kHardSigmoid:
    case EwOp::kHardSwish: case EwOp::kSoftsign:
      return 4;
    case EwOp::kExp: case EwOp::kLog: case EwOp::kSigmoid: case EwOp::kTanh: case EwOp::kErf:
    case EwOp::kSin: case EwOp::kCos: case EwOp::kElu: case EwOp::kGelu: case EwOp::kGeluTanh:
      return 20;
    case EwOp::kSoftplus:
      return 40;
    case EwOp::kPow:
      return 40;
    case EwOp::kPowF64:
      return 60;
    case EwOp::kCount: break;
  }
  return 1;
}

}  // namespace deepep::opt
