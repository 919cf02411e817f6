#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "format/de_file.h"
#include "frontend/onnx_writer.h"
#include "ir/op_registry.h"

using namespace deepep;
namespace fs = std::filesystem;

namespace {
std::unique_ptr<Graph> weighted_graph(int64_t n) {
  auto g = std::make_unique<Graph>();
  Value* x = g->add_value("x");
  x->dtype = DType::kFloat32;
  x->shape = SymShape{Dim::sym("batch"), Dim::known(n)};
  g->inputs.push_back(x);
  Value* prev = x;
  for (int k = 0; k < 3; ++k) {
    Value* b = g->add_value("b" + std::to_string(k));
    Tensor t(DType::kFloat32, {n});
    for (int64_t i = 0; i < n; ++i) t.data<float>()[i] = float(i * (k + 1)) * 0.25f;
    b->data = t;
    b->dtype = DType::kFloat32;
    b->shape = to_sym_shape({n});
    Node* add = g->add_node("Add", "add" + std::to_string(k));
    add->def = find_op("Add");
    Value* y = g->add_value("y" + std::to_string(k));
    add->inputs = {prev, b};
    add->outputs = {y};
    prev = y;
  }
  g->outputs.push_back(prev);
  return g;
}

std::string read_all(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}
void write_all(const fs::path& p, const std::string& s) {
  std::ofstream f(p, std::ios::binary);
  f.write(s.data(), std::streamsize(s.size()));
}

class DeFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = fs::temp_directory_path() / ("deepep_de_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir);
    path = (dir / "m.de").string();
    graph = weighted_graph(37);
    infer_shapes(*graph);
    DeWriteOptions o;
    o.metadata_json = R"({"producer":"test"})";
    write_de_file(path, *graph, o);
    bytes = read_all(path);
  }
  void TearDown() override { fs::remove_all(dir); }
  std::string expect_load_error(const std::string& damaged) {
    write_all(path, damaged);
    try {
      load_de_file(path);
    } catch (const Error& e) {
      return e.what();
    }
    ADD_FAILURE() << "damaged file loaded";
    return "";
  }
  fs::path dir;
  std::string path, bytes;
  std::unique_ptr<Graph> graph;
};
}  // namespace

TEST_F(DeFileTest, RoundTripIsBitExactAndAligned) {
  DeFile de = load_de_file(path);
  EXPECT_EQ(de.metadata_json, R"({"producer":"test"})");
  EXPECT_EQ(de.model.graph->to_text(), graph->to_text());
  for (int k = 0; k < 3; ++k) {
    const std::string name = "b" + std::to_string(k);
    const Tensor& a = *de.model.graph->find(name)->data;
    const Tensor& b = *graph->find(name)->data;
    ASSERT_EQ(a.nbytes(), b.nbytes());
    EXPECT_EQ(std::memcmp(a.raw(), b.raw(), a.nbytes()), 0);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(a.raw()) % kDeAlign, 0u) << "weights must be mappable";
  }
  // Writing what was loaded gives the same bytes.
  write_de_file(path + "2", *de.model.graph, DeWriteOptions{de.metadata_json});
  EXPECT_EQ(read_all(path + "2"), bytes);
  // The padding after the 64-byte header and three 32-byte section entries (docs/FORMAT.md) up to the
  // metadata's 64-byte boundary is zeros (it was once copied from past a 64-byte array of zeros).
  const size_t meta = bytes.find(R"({"producer":"test"})");
  ASSERT_EQ(meta, 192u);
  EXPECT_EQ(bytes.substr(160, 32), std::string(32, '\0'));
}

TEST_F(DeFileTest, WrongMagic) {
  std::string d = bytes;
  d[0] = 'X';
  EXPECT_NE(expect_load_error(d).find("bad magic"), std::string::npos);
}

TEST_F(DeFileTest, NewerMajorVersion) {
  std::string d = bytes;
  d[8] = char(kDeMajor + 1);
  EXPECT_NE(expect_load_error(d).find("newer than this DeepEP reads"), std::string::npos);
}

TEST_F(DeFileTest, Truncated) {
  EXPECT_NE(expect_load_error(bytes.substr(0, bytes.size() - 10)).find("truncated"), std::string::npos);
  EXPECT_NE(expect_load_error(bytes.substr(0, 20)).find("truncated"), std::string::npos);
  EXPECT_NE(expect_load_error("").find("truncated"), std::string::npos);
}

TEST_F(DeFileTest, BadChecksumInEachSection) {
  uint64_t weights_offset;
  std::memcpy(&weights_offset, &bytes[64 + 2 * 32 + 8], 8);
  for (size_t at : {bytes.find("producer"), bytes.find("location"), size_t(weights_offset + 4)}) {
    std::string d = bytes;
    d[at] ^= 0x40;
    EXPECT_NE(expect_load_error(d).find("corrupt"), std::string::npos) << at;
  }
}

TEST_F(DeFileTest, OutOfRangeSectionOffset) {
  std::string d = bytes;
  // Section table entry 2 (weights): offset field at 64 + 2*32 + 8.
  uint64_t huge = uint64_t(1) << 40;
  std::memcpy(&d[64 + 2 * 32 + 8], &huge, 8);
  std::string msg = expect_load_error(d);
  EXPECT_TRUE(msg.find("outside the file") != std::string::npos ||
              msg.find("checksum") != std::string::npos)
      << msg;
}

TEST_F(DeFileTest, SectionTableOffsetNearTheTopOfTheAddressSpace) {
  // Found by fuzz_de_loader: offset + size wrapped around 2^64 and passed the
  // bounds check, and the table was then copied from far outside the mapping.
  std::string d = bytes;
  const uint64_t wrap = ~uint64_t(0) - 16;  // header field at 24
  std::memcpy(&d[24], &wrap, 8);
  EXPECT_NE(expect_load_error(d).find("section table"), std::string::npos);
}
