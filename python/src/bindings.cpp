// The compiled half of the `deepep` Python package. It speaks bytes: the
// Python side (python/deepep/engine.py) turns numpy arrays of any dtype,
// bfloat16 and the ml_dtypes types included, into (dtype name, shape, uint8
// view) and back, so no tensor data is copied crossing the boundary.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/function.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>
#include <nanobind/stl/unique_ptr.h>
#include <nanobind/stl/vector.h>

#include <mutex>

#include "deepep/converter.h"
#include "deepep/engine.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/thread_pool.h"
#include "runtime/cuda_runtime.h"
#include "runtime/session_debug.h"

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

NamedTensors wrap_all(const std::vector<RawTensor>& raw, const char* what) {
  NamedTensors out;
  for (const auto& [name, dt, shape, bytes] : raw) {
    DType d = dtype_from_name(dt);
    if (d == DType::kUndefined || dtype_size(d) == 0)
      throw InputError(std::string(what) + " '" + name + "': unsupported numpy dtype " + dt);
    Tensor t = Tensor::wrap(d, shape, const_cast<uint8_t*>(bytes.data()), nullptr);
    if (t.nbytes() != bytes.size())
      throw InputError(std::string(what) + " '" + name + "': buffer size does not match its shape");
    out.emplace_back(name, std::move(t));
  }
  return out;
}

std::vector<OutTensor> to_python(NamedTensors& out) {
  std::vector<OutTensor> result;
  for (auto& [name, t] : out) {
    auto* keep = new Tensor(t);
    nb::capsule owner(keep, [](void* p) noexcept { delete static_cast<Tensor*>(p); });
    nb::ndarray<nb::numpy, uint8_t, nb::ndim<1>> arr(keep->raw(), {keep->nbytes()}, owner);
    result.emplace_back(name, std::string(dtype_name(t.dtype())), t.shape(), arr);
  }
  return result;
}

// A session guarded for use from several Python threads.
struct PySession {
  std::unique_ptr<Session> session;
  std::mutex mu;
  std::vector<OutTensor> run(const std::vector<RawTensor>& feeds, const std::vector<RawTensor>& outputs) {
    NamedTensors in = wrap_all(feeds, "input");
    NamedTensors pre = wrap_all(outputs, "output");
    NamedTensors out;
    {
      nb::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(mu);
      out = session->run(in, pre);
    }
    return to_python(out);
  }
  nb::dict memory_report() {
    MemoryReport r;
    {
      std::lock_guard<std::mutex> lock(mu);
      r = session->memory_report();
    }
    nb::dict d;
    d["naive_bytes"] = r.naive_bytes;
    d["planned_bytes"] = r.planned_bytes;
    d["lower_bound_bytes"] = r.lower_bound_bytes;
    d["weights_bytes"] = r.weights_bytes;
    d["planned_buffers"] = r.planned_buffers;
    d["inplace_reuses"] = r.inplace_reuses;
    return d;
  }
  // For tests: the last plan, validated (check is "" when no two live buffers overlap).
  nb::dict debug_plan() {
    std::lock_guard<std::mutex> lock(mu);
    nb::dict d;
    const ArenaPlan* p = SessionDebug::last_plan(*session);
    if (!p) return d;
    d["check"] = check_plan(p->buffers, p->memory);
    d["strategy"] = p->memory.strategy;
    d["buffers"] = p->buffers.size();
    d["inplace_reuses"] = p->inplace_reuses;
    d["cached_plans"] = SessionDebug::cached_plans(*session);
    d["inplace_hits"] = SessionDebug::last_inplace_hits(*session);
    d["fallbacks"] = SessionDebug::last_fallbacks(*session);
    d["copied_views"] = SessionDebug::last_copied_views(*session);
    return d;
  }
};

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

  nb::class_<PySession>(m, "_Session")
      .def("run_raw", &PySession::run, nb::arg("feeds"), nb::arg("outputs"))
      .def("memory_report", &PySession::memory_report)
      .def("_debug_plan", &PySession::debug_plan);

  nb::class_<Engine>(m, "_Engine")
      .def_static(
          "load",
          [](const std::string& path, const std::string& device, uint64_t pool, int fusion_level,
             bool plan_memory, const std::string& precision, bool cuda_graphs, const std::string& layout,
             const std::string& output_dtype) {
            EngineOptions o;
            o.layout = layout;
            o.output_dtype = output_dtype;
            o.device = device;
            o.precision = precision;
            o.cuda_graphs = cuda_graphs;
            o.memory_pool_bytes = pool;
            o.fusion_level = fusion_level;
            o.plan_memory = plan_memory;
            nb::gil_scoped_release release;
            return Engine::load(path, o);
          },
          nb::arg("path"), nb::arg("device") = "cpu", nb::arg("memory_pool_bytes") = 0,
          nb::arg("fusion_level") = 2, nb::arg("plan_memory") = true, nb::arg("precision") = "fp32",
          nb::arg("cuda_graphs") = true, nb::arg("layout") = "auto", nb::arg("output_dtype") = "model")
      .def_prop_ro("inputs", [](const Engine& e) { return infos(e.inputs()); })
      .def_prop_ro("layout", &Engine::layout)
      .def_prop_ro("outputs", [](const Engine& e) { return infos(e.outputs()); })
      .def_prop_ro("device", &Engine::device)
      .def_prop_ro("node_count", &Engine::node_count)
      .def_prop_ro("metadata_json", &Engine::metadata_json)
      .def("graph_text", &Engine::graph_text)
      .def("create_session", [](const Engine& e) {
        auto s = std::make_unique<PySession>();
        s->session = e.create_session();
        return s;
      });

  // The hardware probe (src/runtime/cuda_probe.cpp); python/deepep/devices.py adds the CPU.
  m.def("cuda_built", &cuda_built);
  // The CPU kernels' choices: the ISA they run, and whether float32 GEMMs may
  // run as bf16x3 on AMX tiles (precision "fp32").
  m.def("cpu_kernels", []() {
    nb::dict d;
    d["isa"] = std::string(cpu::isa_name(cpu::active_isa()));
    d["amx_bf16x3"] = cpu::amx_usable();
    d["threads"] = cpu::ThreadPool::global().size();
    return d;
  });
  m.def("cuda_devices", []() {
    std::string why;
    std::vector<GpuDeviceInfo> devs;
    {
      nb::gil_scoped_release release;
      devs = cuda_devices(&why);
    }
    nb::list out;
    for (const GpuDeviceInfo& g : devs) {
      nb::dict d;
      d["device"] = "cuda:" + std::to_string(g.index);
      d["name"] = g.name;
      d["compute_capability"] = std::to_string(g.cc_major) + "." + std::to_string(g.cc_minor);
      d["tensor_cores"] = g.tensor_cores;
      d["sm_count"] = g.sm_count;
      d["clock_mhz"] = g.clock_khz / 1000.0;
      d["memory_bytes"] = g.memory_bytes;
      d["memory_bus_bits"] = g.memory_bus_bits;
      d["memory_clock_mhz"] = g.memory_clock_khz / 1000.0;
      d["memory_bandwidth_gbs"] = g.memory_bandwidth_gbs;
      d["l2_bytes"] = g.l2_bytes;
      d["shared_memory_per_block_optin"] = g.smem_per_block_optin;
      d["shared_memory_per_sm"] = g.smem_per_sm;
      d["fp32_cores_per_sm"] = g.fp32_cores_per_sm;
      d["peak_fp32_tflops"] = g.peak_fp32_tflops;
      d["peak_fp16_tensor_tflops"] = g.peak_fp16_tflops;
      d["tf32"] = g.tf32;
      d["bf16"] = g.bf16;
      d["driver_version"] = g.driver_version;
      d["runtime_version"] = g.runtime_version;
      out.append(d);
    }
    return nb::make_tuple(out, why);
  });

  m.def(
      "convert_model",
      [](const std::string& in, const std::string& out, const std::string& precision, int level,
         std::function<void(std::string, double)> progress) {
        ConvertOptions o;
        o.precision = precision;
        o.fusion_level = level;
        if (progress)
          o.progress = [&](const std::string& stage, double f) {
            nb::gil_scoped_acquire acquire;
            progress(stage, f);
          };
        ConvertResult r;
        {
          nb::gil_scoped_release release;
          r = convert_model(in, out, o);
        }
        return std::make_tuple(r.metadata_json, r.file_bytes, r.weights_bytes);
      },
      nb::arg("input"), nb::arg("output"), nb::arg("precision") = "fp32", nb::arg("fusion_level") = 2,
      nb::arg("progress") = nb::none());
}
