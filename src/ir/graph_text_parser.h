// Reads the text form that Graph::to_text prints back into a Graph, so that
// tests (optimizer passes above all) read as "this graph becomes that graph":
//
//   graph main(%x: float32[batch,4]) {
//     %w: float32[4] = const[1, 2, 3, 4]
//     %y: float32[batch,4] = Add(%x, %w)
//     %z: float32[batch,4] = Relu(%y)     # comments run to the end of the line
//     return %z
//   }
//
// Whitespace is free. A node's output types may be left out (undefined
// dtype, unknown rank). Ops of the default domain get their OpDef when this
// build has one; other ops (and "domain.Op" ops) parse with def == nullptr, so
// rewrite tests may use ops whose kernels live elsewhere. A constant needs its
// full type and either all its values or one value that fills it. Summarized
// constants ("const<digest>", printed for more than kMaxTextElements values)
// cannot be read back: the parser says so.
#pragma once
#include <memory>
#include <string_view>

#include "ir/graph.h"

namespace deepep {

// Throws deepep::Error naming the line and column of the first problem.
std::unique_ptr<Graph> parse_graph_text(std::string_view text);

}  // namespace deepep
