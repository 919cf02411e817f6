// One exception type for every user-facing failure: a bad model file, an
// unsupported op, an input that does not match the model. Messages name the
// thing that is wrong (file, node, input) and what was expected.
#pragma once
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>

namespace deepep {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

// The caller passed an input that contradicts the model (name, dtype, shape).
class InputError : public Error {
 public:
  using Error::Error;
};

namespace detail {
template <class... Args>
std::string concat(Args&&... args) {
  std::ostringstream os;
  (os << ... << std::forward<Args>(args));
  return os.str();
}
}  // namespace detail

}  // namespace deepep

// DEEPEP_CHECK(cond, "message parts", ...) throws deepep::Error when cond is false.
#define DEEPEP_CHECK(cond, ...)                                        \
  do {                                                                 \
    if (!(cond)) throw ::deepep::Error(::deepep::detail::concat(__VA_ARGS__)); \
  } while (0)
#define DEEPEP_FAIL(...) throw ::deepep::Error(::deepep::detail::concat(__VA_ARGS__))
