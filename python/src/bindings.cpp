// The compiled half of the `deepep` Python package. It speaks bytes: the
// Python side (python/deepep/engine.py) turns numpy arrays of any dtype,
// bfloat16 included, into (dtype name, shape, uint8 view) and back, so no
// tensor data is copied crossing the boundary.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/vector.h>

#include "deepep/engine.h"

namespace nb = nanobind;
using namespace deepep;

namespace {

using Bytes = nb::ndarray<const uint8_t, nb::ndim<1>, nb::c_contig, nb::device::cpu>;
using RawTensor = std::tuple<std::string, std::string, std::vector<int64_t>, Bytes>;
using OutTensor = std::tuple<std::string, std::string, std::vector<int64_t>,
                             nb::ndarray<nb::numpy, uint8_t, nb::ndim<1>>>;

nb::dict info_dict(const TensorInfo& t) {
  nb::dict d;
  d["name"] = t.name;
  d["dtype"] = std::string(dtype_name(t.dtype));
  if (t.has_shape) {
    nb::list shape;
    for (size_t i = 0; i < t.dims.size(); ++i) {
      if (t.dims[i] >= 0) shape.append(t.dims[i]);
      else if (!t.symbols[i].empty()) shape.append(t.symbols[i]);
      else shape.append(nb::none());
    }
    d["shape"] = shape;
  } else {
    d["shape"] = nb::none();
  }
  return d;
}

nb::list infos(const std::vector<TensorInfo>& v) {
  nb::list l;
  for (const auto& t : v) l.append(info_dict(t));
  return l;
}

std::vector<OutTensor> run_raw(const Engine& e, const std::vector<RawTensor>& feeds) {
  NamedTensors in;
  for (const auto& [name, dt, shape, bytes] : feeds) {
    DType d = dtype_from_name(dt);
    if (d == DType::kUndefined || dtype_size(d) == 0)
      throw InputError("input '" + name + "': unsupported numpy dtype " + dt);
    Tensor t = Tensor::wrap(d, shape, const_cast<uint8_t*>(bytes.data()), nullptr);
    if (t.nbytes() != bytes.size())
      throw InputError("input '" + name + "': buffer size does not match its shape");
    in.emplace_back(name, std::move(t));
  }
  NamedTensors out;
  {
    nb::gil_scoped_release release;
    out = e.run(in);
  }
  std::vector<OutTensor> result;
  for (auto& [name, t] : out) {
    auto* keep = new Tensor(t);
    nb::capsule owner(keep, [](void* p) noexcept { delete static_cast<Tensor*>(p); });
    size_t n = keep->nbytes();
    nb::ndarray<nb::numpy, uint8_t, nb::ndim<1>> arr(keep->raw(), {n}, owner);
    result.emplace_back(name, std::string(dtype_name(t.dtype())), t.shape(), arr);
  }
  return result;
}

}  // namespace

NB_MODULE(_deepep, m) {
  m.doc() = "DeepEP inference engine (compiled core)";
  // deepep.Error (a RuntimeError) for every DeepEP failure; deepep.InputError,
  // for inputs that contradict the model, is both a deepep.Error and a ValueError.
  static nb::exception<Error> error_type(m, "Error", PyExc_RuntimeError);
  static PyObject* input_error_type = PyErr_NewException(
      "deepep.InputError", nb::make_tuple(error_type, nb::handle(PyExc_ValueError)).ptr(), nullptr);
  m.attr("InputError") = nb::handle(input_error_type);
  nb::register_exception_translator([](const std::exception_ptr& p, void*) {
    try {
      std::rethrow_exception(p);
    } catch (const InputError& e) {
      PyErr_SetString(input_error_type, e.what());
    }
  });

  nb::class_<Engine>(m, "_Engine")
      .def_static(
          "load",
          [](const std::string& path, const std::string& device) {
            EngineOptions o;
            o.device = device;
            return Engine::load(path, o);
          },
          nb::arg("path"), nb::arg("device") = "cpu")
      .def_prop_ro("inputs", [](const Engine& e) { return infos(e.inputs()); })
      .def_prop_ro("outputs", [](const Engine& e) { return infos(e.outputs()); })
      .def_prop_ro("device", &Engine::device)
      .def_prop_ro("node_count", &Engine::node_count)
      .def("graph_text", &Engine::graph_text)
      .def("run_raw", &run_raw, nb::arg("feeds"));
}
