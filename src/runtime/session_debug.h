// Test-only access to a Session's memory plans (C++ only, not installed).
#pragma once
#include "deepep/engine.h"
#include "runtime/arena.h"

namespace deepep {

struct SessionDebug {
  // The plan of the most recent run's input-shape signature; nullptr before
  // the first planned run (or with EngineOptions::plan_memory off).
  static const ArenaPlan* last_plan(const Session& s);
  static size_t cached_plans(const Session& s);
  // Of the most recent run that replayed a plan: outputs written over their
  // input 0, planned outputs that fell back to fresh storage, and unrecorded
  // views of the arena that were copied out.
  static size_t last_inplace_hits(const Session& s);
  static size_t last_fallbacks(const Session& s);
  static size_t last_copied_views(const Session& s);
};

}  // namespace deepep
