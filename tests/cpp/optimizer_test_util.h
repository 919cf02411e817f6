// Pass tests read as "this graph becomes that graph": both sides are IR text,
// compared after printing (so layout and comments do not matter). Passes run
// through the pass manager, to a fixed point, with the verifier on.
#pragma once
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "ir/graph_text_parser.h"
#include "optimizer/pipeline.h"

namespace deepep::optest {

inline std::string canon(const std::string& text) { return parse_graph_text(text)->to_text(); }

// Runs the passes (made by `makers`) on `before`; returns the printed result.
inline std::string run_passes(const std::vector<std::unique_ptr<Pass> (*)()>& makers, const std::string& before,
                              FusionReport* report = nullptr) {
  auto g = parse_graph_text(before);
  std::vector<std::unique_ptr<Pass>> passes;
  int level = 1;
  for (auto make : makers) {
    passes.push_back(make());
    level = std::max(level, passes.back()->level());
  }
  OptimizeOptions o;
  o.level = level;
  o.verify = true;
  FusionReport r = optimize_with(*g, passes, o);
  if (report) *report = r;
  return g->to_text();
}

}  // namespace deepep::optest

// EXPECT_REWRITE({make_x, make_y}, before, after): the passes turn `before` into `after`.
#define EXPECT_REWRITE(MAKERS, BEFORE, AFTER) \
  EXPECT_EQ(::deepep::optest::run_passes(MAKERS, BEFORE), ::deepep::optest::canon(AFTER))
// EXPECT_UNCHANGED({make_x}, text): the passes leave `text` as it is.
#define EXPECT_UNCHANGED(MAKERS, TEXT) EXPECT_REWRITE(MAKERS, TEXT, TEXT)
