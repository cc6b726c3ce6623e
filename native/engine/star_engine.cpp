// star_engine.cpp: see star_engine.h for what the engine does and its real-time rules.
#define ORT_API_MANUAL_INIT
#include "star_engine.h"

#include <onnxruntime_cxx_api.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <utility>

namespace star {
namespace {

// ------------------------------------------------------------------------------ minimal JSON
// Just enough JSON for manifest.json: objects, arrays, strings (with escapes), numbers,
// booleans and null. Objects keep their key order.
struct Json {
  enum Kind { Null, Bool, Number, String, Array, Object } kind = Null;
  bool boolean = false;
  double number = 0.0;
  std::string text;
  std::vector<Json> items;
  std::vector<std::pair<std::string, Json>> members;

  const Json* find(const std::string& key) const {
    if (kind != Object) return nullptr;
    for (const auto& m : members)
      if (m.first == key) return &m.second;
    return nullptr;
  }
};

class JsonParser {
 public:
  JsonParser(const std::string& src, const std::string& where) : s_(src), where_(where) {}

  Json parse() {
    Json v = value();
    skip();
    if (i_ != s_.size()) fail("trailing characters");
    return v;
  }

 private:
  const std::string& s_;
  std::string where_;
  size_t i_ = 0;

  [[noreturn]] void fail(const std::string& what) const {
    throw EngineError("'" + where_ + "' is not valid JSON (" + what + " at byte " +
                      std::to_string(i_) + "); the file is corrupt, re-export the model");
  }
  void skip() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t'))
      ++i_;
  }
  bool literal(const char* word) {
    size_t n = std::strlen(word);
    if (s_.compare(i_, n, word) != 0) return false;
    i_ += n;
    return true;
  }
  Json value() {
    skip();
    if (i_ >= s_.size()) fail("unexpected end");
    Json v;
    char c = s_[i_];
    if (c == '{') {
      v.kind = Json::Object;
      ++i_;
      skip();
      if (i_ < s_.size() && s_[i_] == '}') { ++i_; return v; }
      for (;;) {
        skip();
        if (i_ >= s_.size() || s_[i_] != '"') fail("expected a key");
        std::string key = string();
        skip();
        if (i_ >= s_.size() || s_[i_] != ':') fail("expected ':'");
        ++i_;
        v.members.emplace_back(std::move(key), value());
        skip();
        if (i_ < s_.size() && s_[i_] == ',') { ++i_; continue; }
        if (i_ < s_.size() && s_[i_] == '}') { ++i_; return v; }
        fail("expected ',' or '}'");
      }
    }
    if (c == '[') {
      v.kind = Json::Array;
      ++i_;
      skip();
      if (i_ < s_.size() && s_[i_] == ']') { ++i_; return v; }
      for (;;) {
        v.items.push_back(value());
        skip();
        if (i_ < s_.size() && s_[i_] == ',') { ++i_; continue; }
        if (i_ < s_.size() && s_[i_] == ']') { ++i_; return v; }
        fail("expected ',' or ']'");
      }
    }
    if (c == '"') { v.kind = Json::String; v.text = string(); return v; }
    if (literal("true")) { v.kind = Json::Bool; v.boolean = true; return v; }
    if (literal("false")) { v.kind = Json::Bool; return v; }
    if (literal("null")) return v;
    if (c == '-' || (c >= '0' && c <= '9')) {
      size_t start = i_;
      while (i_ < s_.size() && std::strchr("+-0123456789.eE", s_[i_]) != nullptr) ++i_;
      std::istringstream in(s_.substr(start, i_ - start));
      in.imbue(std::locale::classic());
      in >> v.number;
      if (in.fail()) fail("bad number");
      v.kind = Json::Number;
      return v;
    }
    fail("unexpected character");
  }
  static void utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  unsigned hex4() {
    if (i_ + 4 > s_.size()) fail("short \\u escape");
    unsigned v = 0;
    for (int k = 0; k < 4; ++k) {
      char h = s_[i_++];
      v <<= 4;
      if (h >= '0' && h <= '9') v |= unsigned(h - '0');
      else if (h >= 'a' && h <= 'f') v |= unsigned(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') v |= unsigned(h - 'A' + 10);
      else fail("bad \\u escape");
    }
    return v;
  }
  std::string string() {
    ++i_;  // opening quote
    std::string out;
    while (i_ < s_.size()) {
      char c = s_[i_++];
      if (c == '"') return out;
      if (c != '\\') { out += c; continue; }
      if (i_ >= s_.size()) break;
      char e = s_[i_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00 && i_ + 1 < s_.size() && s_[i_] == '\\' &&
              s_[i_ + 1] == 'u') {
            i_ += 2;
            unsigned low = hex4();
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          utf8(out, cp);
          break;
        }
        default: fail("bad escape");
      }
    }
    fail("unterminated string");
  }
};

// ------------------------------------------------------------------------------ manifest helpers
struct ManifestReader {
  std::string path;

  [[noreturn]] void fail(const std::string& what) const {
    throw EngineError("'" + path + "': " + what + "; re-export the model with `star export`");
  }
  const Json& need(const Json& obj, const std::string& key, Json::Kind kind,
                   const std::string& ctx) const {
    const Json* v = obj.find(key);
    if (v == nullptr || v->kind != kind) fail(ctx + " lacks a valid '" + key + "'");
    return *v;
  }
  int integer(const Json& obj, const std::string& key, const std::string& ctx) const {
    double d = need(obj, key, Json::Number, ctx).number;
    if (d != std::floor(d) || std::fabs(d) > 1e9) fail(ctx + "'s '" + key + "' is not an integer");
    return static_cast<int>(d);
  }
  std::string text(const Json& obj, const std::string& key, const std::string& = "") const {
    const Json* v = obj.find(key);
    return (v != nullptr && v->kind == Json::String) ? v->text : std::string();
  }
  std::vector<std::string> strings(const Json& obj, const std::string& key,
                                   const std::string& ctx) const {
    std::vector<std::string> out;
    for (const Json& item : need(obj, key, Json::Array, ctx).items) {
      if (item.kind != Json::String) fail(ctx + "'s '" + key + "' holds a non-string");
      out.push_back(item.text);
    }
    return out;
  }
};

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw EngineError("cannot read '" + path + "'");
  std::ostringstream buf;
  buf << in.rdbuf();
  return buf.str();
}

const char* kStateIn = "state_in.";
const char* kStateOut = "state_out.";
const char* kFormat = "star-onnx";
const int kFormatVersion = 1;
const float kSampleLimit = 1e4f;

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string out = "[";
  for (size_t i = 0; i < shape.size(); ++i) out += (i ? ", " : "") + std::to_string(shape[i]);
  return out + "]";
}

Ort::Env& ort_env() {
  // ONNX Runtime 1.32 starts its telemetry with the first environment: it writes a device id
  // and a database under ~/.cache/Microsoft/DeveloperTools/ in the user's home (in a DAW:
  // already at the plugin scan). ORT_DISABLE_TELEMETRY, set before that, keeps it off; a
  // value the process already has is left as it is.
  setenv("ORT_DISABLE_TELEMETRY", "1", 0);
  static Ort::Env env(ORT_LOGGING_LEVEL_ERROR, "star_engine");
  return env;
}

void init_ort_api() {
  static bool done = false;
  if (done) return;
  const OrtApiBase* base = OrtGetApiBase();
  const OrtApi* api = base ? base->GetApi(ORT_API_VERSION) : nullptr;
  if (api == nullptr)
    throw EngineError(std::string("the ONNX Runtime library loaded (") +
                      (base ? base->GetVersionString() : "?") +
                      ") is older than the headers this engine was built with (API " +
                      std::to_string(ORT_API_VERSION) + "); ship a newer libonnxruntime");
  Ort::InitApi(api);
  done = true;
}

}  // namespace

// ------------------------------------------------------------------------------ the engine
// A texture source as the morph reads it: latent frames (channel-major) and their mean.
struct Texture {
  std::vector<float> latent, mean;
  int frames = 0;  // 0: no source
  SourceMode mode = SourceMode::Loop;
};

struct Engine::Impl {
  ~Impl() {
    delete texture_pending.load();
    delete texture_retired.load();
  }
  // What a graph input or output carries.
  enum Role { EncAudio, Latent, Mean, LogSigma, DecAudio, StateIn, StateOut, Ignored };

  struct State {
    StateInfo info;
    ONNXTensorElementDataType type = ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
    size_t bytes = 0;
    std::vector<unsigned char> data[2];  // set 0 and set 1: read one, write the other
    Ort::Value value[2]{Ort::Value(nullptr), Ort::Value(nullptr)};
  };

  struct Graph {
    std::string kind, file;
    Ort::Session session{nullptr};
    std::vector<std::string> input_names, output_names;
    std::vector<const char*> in_names, out_names;
    std::vector<std::pair<Role, int>> in_roles, out_roles;  // int: state index
    std::vector<State> states;
    std::vector<const OrtValue*> in_values;
    std::vector<OrtValue*> out_values;
    int parity = 0;
  };

  ModelInfo model;
  EngineConfig config;
  std::vector<StateInfo> state_infos;
  Graph encoder, decoder;
  Ort::MemoryInfo cpu{nullptr};

  int batch = 1;       // batch rows of the model
  int rows = 1;        // batch * audio_channels
  int max_frames = 1;  // most hops one chunk can complete
  int hop = 1;

  // Hop staging (rows x stage_stride), the encoder input, latents and decoder output.
  std::vector<float> stage, enc_audio, mean, logsigma, dec_audio;
  int stage_stride = 0, pending = 0;
  // Views for every frame count 1..max_frames (index f).
  std::vector<Ort::Value> enc_audio_v, mean_v, logsigma_v, dec_audio_v;

  // The morph graph (optional: exports made before it have none) and its buffers. Views for
  // every frame count, like the latents; the controls are smoothed here, per frame.
  enum MorphInput { MMean, MLogSigma, MSource, MControls, MGain, MFirstFrame };
  bool morph_present = false;
  std::string morph_file, offline_encoder_file;
  Ort::Session morph_session{nullptr}, offline_encoder{nullptr};
  std::vector<std::string> morph_input_names;
  std::vector<const char*> morph_in_names;
  std::vector<MorphInput> morph_roles;
  std::vector<const OrtValue*> morph_in_values;
  std::vector<float> z, source_frames, controls, gains;
  std::vector<Ort::Value> z_v, source_v, controls_v, gain_v;
  int64_t first_frame = 0;
  Ort::Value first_frame_v{nullptr};
  double smoothing_s = 0.05;
  float keep = 0.f, move = 1.f;  // one-pole coefficients, float32 like numpy's
  // The targets may be set from any thread (a host's parameter thread, or the audio thread
  // while a worker runs the model): each is one atomic, read once per morph call.
  std::atomic<float> target_structure{0.f}, target_texture{1.f}, target_temperature{0.f};
  float current[4] = {0.f, 1.f, 0.f, 1.f};  // structure, texture, temperature, gain
  int64_t frame = 0;  // latent frames since reset (the noise table's index)
  // The texture source. `texture` is the one the processing thread uses; a new one is
  // published into `texture_pending` by set_texture (any other thread) and taken at the next
  // morph; the one it replaces goes to `texture_retired`, freed by the next set_texture or
  // release call, so the processing thread never allocates or frees one. It takes a pending
  // source only while `texture_retired` is empty.
  std::unique_ptr<Texture> texture{new Texture};
  std::atomic<Texture*> texture_pending{nullptr};
  std::atomic<Texture*> texture_retired{nullptr};
  std::atomic<int> published_frames{0};  // frames of the latest set_texture (0: none)

  // Output FIFO: a ring per row.
  std::vector<float> fifo;
  int fifo_capacity = 0, fifo_head = 0, fifo_size = 0;
  int skip = 0;
  uint64_t sanitized = 0;

  void open_graph(Graph& g, const std::string& dir, const Json& manifest, const ManifestReader& r,
                  const std::string& kind) {
    const Json& graphs = r.need(manifest, "graphs", Json::Object, "manifest");
    const Json* spec = graphs.find(kind);
    if (spec == nullptr || spec->kind != Json::Object)
      r.fail("lists no '" + kind + "' graph (the model is not causal, or it was exported with "
             "--offline-only) so it cannot stream");
    std::string ctx = "graph '" + kind + "'";
    g.kind = kind;
    g.file = dir + "/" + r.need(*spec, "file", Json::String, ctx).text;
    g.input_names = r.strings(*spec, "inputs", ctx);
    g.output_names = r.strings(*spec, "outputs", ctx);

    // States, in manifest order.
    for (const Json& e : r.need(*spec, "states", Json::Array, ctx).items) {
      State st;
      st.info.graph = kind;
      st.info.name = r.need(e, "name", Json::String, ctx + " state").text;
      std::string sctx = ctx + " state '" + st.info.name + "'";
      st.info.dtype = r.text(e, "dtype", sctx);
      if (st.info.dtype.empty()) st.info.dtype = "float32";
      size_t elem = 4;
      if (st.info.dtype == "float32") {
        st.type = ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
      } else if (st.info.dtype == "float64") {
        st.type = ONNX_TENSOR_ELEMENT_DATA_TYPE_DOUBLE;
        elem = 8;
      } else {
        r.fail(sctx + " has dtype '" + st.info.dtype + "' (this engine knows float32, float64)");
      }
      const Json* init = e.find("init");
      if (init != nullptr && !(init->kind == Json::String && init->text == "zeros"))
        r.fail(sctx + " has an initial value other than 'zeros'");
      int multiple = 1;
      if (const Json* m = e.find("batch_multiple"))
        multiple = std::max(1, static_cast<int>(m->number));
      std::vector<int> dynamic;
      if (const Json* d = e.find("dynamic_axes"))
        for (const Json& a : d->items) dynamic.push_back(static_cast<int>(a.number));
      const Json& shape = r.need(e, "shape", Json::Array, sctx);
      size_t count = 1;
      for (size_t a = 0; a < shape.items.size(); ++a) {
        int64_t n = static_cast<int64_t>(shape.items[a].number);
        if (a == 0) n = int64_t(batch) * multiple;
        if (n < 0) r.fail(sctx + " has a negative size");
        bool is_dynamic = std::find(dynamic.begin(), dynamic.end(), int(a)) != dynamic.end();
        if (a > 0 && n == 0 && is_dynamic) st.info.pending_buffer = true;
        st.info.shape.push_back(n);
        count *= size_t(n);
      }
      if (shape.items.empty()) r.fail(sctx + " has no shape");
      st.bytes = count * elem;
      for (int p = 0; p < 2; ++p) {
        st.data[p].assign(std::max<size_t>(st.bytes, 8), 0);  // a valid pointer even at 0 bytes
      }
      g.states.push_back(std::move(st));
    }
    for (State& st : g.states) {
      for (int p = 0; p < 2; ++p) {
        st.value[p] = Ort::Value::CreateTensor(cpu, st.data[p].data(), st.bytes,
                                               st.info.shape.data(), st.info.shape.size(),
                                               st.type);
      }
      state_infos.push_back(st.info);
    }

    auto state_index = [&](const std::string& name) {
      for (size_t k = 0; k < g.states.size(); ++k)
        if (g.states[k].info.name == name) return int(k);
      return -1;
    };
    bool enc = kind == "encoder_stream";
    for (const std::string& name : g.input_names) {
      Role role;
      int index = -1;
      if (starts_with(name, kStateIn)) {
        index = state_index(name.substr(std::strlen(kStateIn)));
        if (index < 0) r.fail(ctx + " input '" + name + "' has no state entry");
        role = StateIn;
      } else if (enc && name == "audio") {
        role = EncAudio;
      } else if (!enc && name == "latent") {
        role = Latent;
      } else {
        r.fail(ctx + " has an input '" + name + "' this engine does not know how to feed");
      }
      g.in_roles.emplace_back(role, index);
    }
    for (const std::string& name : g.output_names) {
      Role role = Ignored;
      int index = -1;
      if (starts_with(name, kStateOut)) {
        index = state_index(name.substr(std::strlen(kStateOut)));
        if (index < 0) r.fail(ctx + " output '" + name + "' has no state entry");
        role = StateOut;
      } else if (enc && name == "mean") {
        role = Mean;
      } else if (enc && name == "logsigma") {
        role = LogSigma;
      } else if (!enc && name == "audio") {
        role = DecAudio;
      }
      g.out_roles.emplace_back(role, index);
    }
    for (size_t k = 0; k < g.states.size(); ++k) {
      const std::string& n = g.states[k].info.name;
      bool in = std::find(g.input_names.begin(), g.input_names.end(), kStateIn + n) !=
                g.input_names.end();
      bool out = std::find(g.output_names.begin(), g.output_names.end(), kStateOut + n) !=
                 g.output_names.end();
      if (!in || !out) r.fail(ctx + " state '" + n + "' lacks its state_in/state_out pair");
    }
    for (const auto& s : g.input_names) g.in_names.push_back(s.c_str());
    for (const auto& s : g.output_names) g.out_names.push_back(s.c_str());
    g.in_values.assign(g.input_names.size(), nullptr);
    g.out_values.assign(g.output_names.size(), nullptr);

    g.session = make_session(g.file);
    check_graph(g, r);
  }

  // The graph's own inputs/outputs, metadata and state shapes against the manifest.
  void check_graph(Graph& g, const ManifestReader& r) {
    Ort::AllocatorWithDefaultOptions alloc;
    Ort::ModelMetadata meta = g.session.GetModelMetadata();
    Ort::AllocatedStringPtr fmt = meta.LookupCustomMetadataMapAllocated("star_onnx_format", alloc);
    std::string expected = std::string(kFormat) + " " + std::to_string(kFormatVersion);
    if (!fmt || expected != fmt.get())
      throw EngineError("'" + g.file + "' is in ONNX format '" + (fmt ? fmt.get() : "?") +
                        "'; this engine reads '" + expected + "'. Re-export the model with "
                        "`star export MODEL -o DIR`");
    size_t n_in = g.session.GetInputCount(), n_out = g.session.GetOutputCount();
    std::vector<std::string> ins, outs;
    for (size_t i = 0; i < n_in; ++i)
      ins.push_back(g.session.GetInputNameAllocated(i, alloc).get());
    for (size_t i = 0; i < n_out; ++i)
      outs.push_back(g.session.GetOutputNameAllocated(i, alloc).get());
    if (ins != g.input_names || outs != g.output_names)
      throw EngineError("'" + g.file + "' does not match manifest.json (its inputs/outputs "
                        "differ from the manifest's); re-export the model");
    for (size_t i = 0; i < n_in; ++i) {
      Ort::TypeInfo type = g.session.GetInputTypeInfo(i);
      auto tensor = type.GetTensorTypeAndShapeInfo();
      auto role = g.in_roles[i];
      ONNXTensorElementDataType want = ONNX_TENSOR_ELEMENT_DATA_TYPE_FLOAT;
      if (role.first == StateIn) {
        const State& st = g.states[size_t(role.second)];
        want = st.type;
        std::vector<int64_t> dims = tensor.GetShape();
        bool ok = dims.size() == st.info.shape.size();
        for (size_t a = 1; ok && a < dims.size(); ++a)
          ok = dims[a] < 0 || dims[a] == st.info.shape[a];
        if (!ok)
          throw EngineError("'" + g.file + "': state '" + st.info.name + "' is " +
                            shape_text(dims) + " in the graph but " +
                            shape_text(st.info.shape) + " in manifest.json; re-export");
      }
      if (tensor.GetElementType() != want)
        throw EngineError("'" + g.file + "': input '" + g.input_names[i] +
                          "' has an element type this engine does not feed");
    }
    (void)r;
  }

  // A session on one graph file: 1 intra-op thread by default, like OnnxVAE.
  Ort::Session make_session(const std::string& file) {
    Ort::SessionOptions options;
    options.SetIntraOpNumThreads(std::max(1, config.threads));
    options.SetInterOpNumThreads(1);
    options.SetExecutionMode(ORT_SEQUENTIAL);
    options.SetLogSeverityLevel(3);
    try {
      return Ort::Session(ort_env(), file.c_str(), options);
    } catch (const Ort::Exception& e) {
      std::string why = e.what();
      why = why.substr(0, why.find('\n')).substr(0, 300);
      throw EngineError("'" + file + "' is not a loadable ONNX graph (missing, corrupt, "
                        "truncated or not ONNX): " + why);
    }
  }

  // The morph graph when the manifest lists one: inputs by name (the noise table keeps its
  // stored default, MorphParams.seed 0), checked against the graph itself.
  void open_morph(const std::string& dir, const Json& manifest, const ManifestReader& r) {
    const Json& graphs = r.need(manifest, "graphs", Json::Object, "manifest");
    if (const Json* enc = graphs.find("encoder"))
      offline_encoder_file = dir + "/" + r.need(*enc, "file", Json::String, "graph 'encoder'").text;
    const Json* spec = graphs.find("morph");
    if (spec == nullptr) return;
    const std::string ctx = "graph 'morph'";
    morph_file = dir + "/" + r.need(*spec, "file", Json::String, ctx).text;
    morph_input_names = r.strings(*spec, "inputs", ctx);
    static const char* known[] = {"mean", "logsigma", "source", "controls", "gain",
                                  "first_frame"};
    for (const std::string& name : morph_input_names) {
      int role = -1;
      for (int k = 0; k < 6; ++k)
        if (name == known[k]) role = k;
      if (role < 0) r.fail(ctx + " has an input '" + name + "' this engine does not know how to feed");
      morph_roles.push_back(MorphInput(role));
    }
    if (morph_roles.size() != 6) r.fail(ctx + " does not list the six morph inputs");
    if (r.strings(*spec, "outputs", ctx) != std::vector<std::string>{"z"})
      r.fail(ctx + " does not have the one output 'z'");
    if (const Json* sm = spec->find("smoothing_s"))
      if (sm->kind == Json::Number && sm->number > 0) smoothing_s = sm->number;
    morph_session = make_session(morph_file);
    Ort::AllocatorWithDefaultOptions alloc;
    std::vector<std::string> ins;
    for (size_t i = 0; i < morph_session.GetInputCount(); ++i)
      ins.push_back(morph_session.GetInputNameAllocated(i, alloc).get());
    if (ins != morph_input_names)
      throw EngineError("'" + morph_file + "' does not match manifest.json (its inputs differ "
                        "from the manifest's); re-export the model");
    for (const std::string& n : morph_input_names) morph_in_names.push_back(n.c_str());
    morph_in_values.assign(morph_roles.size(), nullptr);
    // LatentMorph: coef = exp(-1 / max(1e-6, smoothing_s * frame_rate)); numpy multiplies
    // float32 arrays by float32(coef) and float32(1 - coef).
    const double frame_rate = double(model.sample_rate) / double(model.hop);
    const double coef = std::exp(-1.0 / std::max(1e-6, smoothing_s * frame_rate));
    keep = float(coef);
    move = float(1.0 - coef);
    morph_present = true;
  }

  void build_buffers() {
    hop = model.hop;
    const int A = model.audio_channels, C = model.latent_channels;
    max_frames = (hop - 1 + config.max_block) / hop;
    stage_stride = hop - 1 + config.max_block;
    stage.assign(size_t(rows) * stage_stride, 0.f);
    enc_audio.assign(size_t(rows) * max_frames * hop, 0.f);
    dec_audio.assign(size_t(rows) * max_frames * hop, 0.f);
    mean.assign(size_t(batch) * C * max_frames, 0.f);
    logsigma.assign(size_t(batch) * C * max_frames, 0.f);
    enc_audio_v.clear(); mean_v.clear(); logsigma_v.clear(); dec_audio_v.clear();
    for (int f = 0; f <= max_frames; ++f) {
      if (f == 0) {  // index 0 unused
        enc_audio_v.emplace_back(nullptr); mean_v.emplace_back(nullptr);
        logsigma_v.emplace_back(nullptr); dec_audio_v.emplace_back(nullptr);
        continue;
      }
      int64_t audio_shape[3] = {batch, A, int64_t(f) * hop};
      int64_t latent_shape[3] = {batch, C, f};
      size_t audio_n = size_t(rows) * f * hop, latent_n = size_t(batch) * C * f;
      enc_audio_v.push_back(Ort::Value::CreateTensor<float>(cpu, enc_audio.data(), audio_n,
                                                            audio_shape, 3));
      dec_audio_v.push_back(Ort::Value::CreateTensor<float>(cpu, dec_audio.data(), audio_n,
                                                            audio_shape, 3));
      mean_v.push_back(Ort::Value::CreateTensor<float>(cpu, mean.data(), latent_n,
                                                       latent_shape, 3));
      logsigma_v.push_back(Ort::Value::CreateTensor<float>(cpu, logsigma.data(), latent_n,
                                                           latent_shape, 3));
    }
    if (morph_present) {
      z.assign(size_t(batch) * C * max_frames, 0.f);
      source_frames.assign(size_t(C) * max_frames, 0.f);
      controls.assign(size_t(3) * max_frames, 0.f);
      gains.assign(size_t(C) * max_frames, 1.f);
      z_v.clear(); source_v.clear(); controls_v.clear(); gain_v.clear();
      for (int f = 0; f <= max_frames; ++f) {
        if (f == 0) {
          z_v.emplace_back(nullptr); source_v.emplace_back(nullptr);
          controls_v.emplace_back(nullptr); gain_v.emplace_back(nullptr);
          continue;
        }
        int64_t latent_shape[3] = {batch, C, f}, source_shape[3] = {1, C, f};
        int64_t controls_shape[2] = {3, f}, gain_shape[2] = {C, f};
        z_v.push_back(Ort::Value::CreateTensor<float>(cpu, z.data(), size_t(batch) * C * f,
                                                      latent_shape, 3));
        source_v.push_back(Ort::Value::CreateTensor<float>(cpu, source_frames.data(),
                                                           size_t(C) * f, source_shape, 3));
        controls_v.push_back(Ort::Value::CreateTensor<float>(cpu, controls.data(), size_t(3) * f,
                                                             controls_shape, 2));
        gain_v.push_back(Ort::Value::CreateTensor<float>(cpu, gains.data(), size_t(C) * f,
                                                         gain_shape, 2));
      }
      int64_t one = 1;
      first_frame_v = Ort::Value::CreateTensor<int64_t>(cpu, &first_frame, 1, &one, 1);
    }
    fifo_capacity = model.latency_samples + hop + config.max_block;
    fifo.assign(size_t(rows) * fifo_capacity, 0.f);
  }

  void reset() {
    for (Graph* g : {&encoder, &decoder}) {
      for (State& st : g->states)
        for (int p = 0; p < 2; ++p) std::fill(st.data[p].begin(), st.data[p].end(), 0);
      g->parity = 0;
    }
    pending = 0;
    std::fill(fifo.begin(), fifo.end(), 0.f);
    fifo_head = 0;
    fifo_size = model.latency_samples;
    skip = model.synthesis_delay;
    reset_morph();
  }

  // Processing thread: adopt a published texture source (pointer swaps only).
  void take_pending_texture() {
    if (texture_pending.load(std::memory_order_acquire) == nullptr ||
        texture_retired.load(std::memory_order_acquire) != nullptr)
      return;
    Texture* next = texture_pending.exchange(nullptr, std::memory_order_acq_rel);
    if (next == nullptr) return;
    texture_retired.store(texture.release(), std::memory_order_release);
    texture.reset(next);
  }

  // Any other thread: free the source the processing thread gave up.
  void release_retired() { delete texture_retired.exchange(nullptr, std::memory_order_acq_rel); }

  void publish(Texture* next) {
    release_retired();
    published_frames.store(next->frames, std::memory_order_relaxed);
    delete texture_pending.exchange(next, std::memory_order_acq_rel);  // one never taken is dropped
  }

  // LatentMorph.reset: frame 0 (where run_morph starts the smoothed controls at their targets).
  void reset_morph() { frame = 0; }

  // LatentMorph.apply for `frames` frames: smooth the controls frame by frame, pick the source
  // frames, run the morph graph (mean, logsigma -> z).
  void run_morph(int frames) {
    const int C = model.latent_channels, K = model.structure_channels;
    take_pending_texture();
    const float target[4] = {target_structure.load(std::memory_order_relaxed),
                             target_texture.load(std::memory_order_relaxed),
                             target_temperature.load(std::memory_order_relaxed), 1.0f};
    if (frame == 0) std::copy(target, target + 4, current);  // nothing has sounded: no glide
    const Texture& tex = *texture;
    const int texture_frames = tex.frames;
    const bool has_source = texture_frames > 0;
    float* amount_s = controls.data();
    float* amount_t = controls.data() + frames;
    float* temperature = controls.data() + 2 * frames;
    for (int i = 0; i < frames; ++i) {
      for (int k = 0; k < 4; ++k) {
        const float a = keep * current[k];  // two roundings, no fused multiply-add:
        const float b = move * target[k];   // numpy's float32 arithmetic exactly
        current[k] = a + b;
      }
      amount_s[i] = has_source && K > 0 ? current[0] : 0.0f;
      amount_t[i] = has_source && K < C ? current[1] : 0.0f;
      temperature[i] = K < C ? current[2] : 0.0f;
      for (int c = 0; c < C; ++c) gains[size_t(c) * frames + i] = current[3];
    }
    for (int c = 0; c < C; ++c) {
      float* dst = source_frames.data() + size_t(c) * frames;
      if (!has_source) {
        std::fill(dst, dst + frames, 0.0f);
        continue;
      }
      const float* src = tex.latent.data() + size_t(c) * texture_frames;
      for (int i = 0; i < frames; ++i) {
        const int64_t idx = frame + i;
        switch (tex.mode) {
          case SourceMode::Loop: dst[i] = src[idx % texture_frames]; break;
          case SourceMode::Hold: dst[i] = src[std::min<int64_t>(idx, texture_frames - 1)]; break;
          case SourceMode::Mean: dst[i] = tex.mean[size_t(c)]; break;
        }
      }
    }
    first_frame = frame;
    for (size_t i = 0; i < morph_roles.size(); ++i) {
      switch (morph_roles[i]) {
        case MMean: morph_in_values[i] = mean_v[size_t(frames)]; break;
        case MLogSigma: morph_in_values[i] = logsigma_v[size_t(frames)]; break;
        case MSource: morph_in_values[i] = source_v[size_t(frames)]; break;
        case MControls: morph_in_values[i] = controls_v[size_t(frames)]; break;
        case MGain: morph_in_values[i] = gain_v[size_t(frames)]; break;
        case MFirstFrame: morph_in_values[i] = first_frame_v; break;
      }
    }
    static const char* out_name[1] = {"z"};
    OrtValue* out_value[1] = {z_v[size_t(frames)]};
    Ort::ThrowOnError(Ort::GetApi().Run(morph_session, nullptr, morph_in_names.data(),
                                        morph_in_values.data(), morph_in_values.size(),
                                        out_name, 1, out_value));
    frame += frames;
  }

  void run(Graph& g, int frames) {
    for (size_t i = 0; i < g.in_roles.size(); ++i) {
      auto role = g.in_roles[i];
      switch (role.first) {
        case EncAudio: g.in_values[i] = enc_audio_v[size_t(frames)]; break;
        case Latent: g.in_values[i] = (morph_present ? z_v : mean_v)[size_t(frames)]; break;
        case StateIn: g.in_values[i] = g.states[size_t(role.second)].value[g.parity]; break;
        default: g.in_values[i] = nullptr; break;
      }
    }
    for (size_t i = 0; i < g.out_roles.size(); ++i) {
      auto role = g.out_roles[i];
      switch (role.first) {
        case Mean: g.out_values[i] = mean_v[size_t(frames)]; break;
        case LogSigma: g.out_values[i] = logsigma_v[size_t(frames)]; break;
        case DecAudio: g.out_values[i] = dec_audio_v[size_t(frames)]; break;
        case StateOut: g.out_values[i] = g.states[size_t(role.second)].value[1 - g.parity]; break;
        default: g.out_values[i] = nullptr; break;  // an output we do not use: ORT allocates
      }
    }
    Ort::ThrowOnError(Ort::GetApi().Run(g.session, nullptr, g.in_names.data(),
                                        g.in_values.data(), g.in_values.size(),
                                        g.out_names.data(), g.out_names.size(),
                                        g.out_values.data()));
    for (size_t i = 0; i < g.out_roles.size(); ++i)
      if (g.out_roles[i].first == Ignored && g.out_values[i] != nullptr) {
        Ort::GetApi().ReleaseValue(g.out_values[i]);
        g.out_values[i] = nullptr;
      }
    g.parity = 1 - g.parity;
  }

  // Host channel c's samples into the staging rows (guarded).
  void stage_input(const float* const* input, int n) {
    const int A = model.audio_channels;
    for (int r = 0; r < rows; ++r) {
      // mono model: row r is host channel r; stereo model: rows are channel pairs, and a
      // mono host signal feeds both rows of its pair.
      int c = (A == 2 && config.channels == 1) ? 0 : r;
      const float* src = input[c];
      float* dst = stage.data() + size_t(r) * stage_stride + pending;
      for (int i = 0; i < n; ++i) {
        float x = src[i];
        if (!(std::fabs(x) <= kSampleLimit)) {  // NaN, Inf or too loud
          ++sanitized;
          x = std::isfinite(x) ? (x > 0 ? kSampleLimit : -kSampleLimit) : 0.f;
        }
        dst[i] = x;
      }
    }
    pending += n;
  }

  // How many of `samples` new decoder samples still precede time zero (synthesis_delay).
  int drop_delay(int samples) {
    const int first = std::min(skip, samples);
    skip -= first;
    return first;
  }

  void push_output(int samples) {
    int first = drop_delay(samples);
    int n = samples - first;
    const size_t row_len = size_t(samples);
    for (int r = 0; r < rows; ++r) {
      const float* src = dec_audio.data() + r * row_len + first;
      float* ring = fifo.data() + size_t(r) * fifo_capacity;
      int pos = (fifo_head + fifo_size) % fifo_capacity;
      for (int i = 0; i < n; ++i) {
        ring[pos] = src[i];
        if (++pos == fifo_capacity) pos = 0;
      }
    }
    fifo_size += n;
  }

  void pop_output(float* const* output, int n) {
    const int A = model.audio_channels;
    for (int c = 0; c < config.channels; ++c) {
      float* dst = output[c];
      if (A == 2 && config.channels == 1) {  // fold the duplicated pair back by the mean
        const float* a = fifo.data();
        const float* b = fifo.data() + fifo_capacity;
        int pos = fifo_head;
        for (int i = 0; i < n; ++i) {
          dst[i] = 0.5f * (a[pos] + b[pos]);
          if (++pos == fifo_capacity) pos = 0;
        }
      } else {
        const float* ring = fifo.data() + size_t(c) * fifo_capacity;
        int pos = fifo_head;
        for (int i = 0; i < n; ++i) {
          dst[i] = ring[pos];
          if (++pos == fifo_capacity) pos = 0;
        }
      }
    }
    fifo_head = (fifo_head + n) % fifo_capacity;
    fifo_size -= n;
  }

  // Stage n host samples and run the graphs on the hops they complete (the one path of
  // process() and process_aligned()): the decoded samples are then in dec_audio (rows x
  // len, row-major); returns len, 0 when no hop completed (no graph ran).
  int run_hops(const float* const* input, int n) {
    stage_input(input, n);
    int frames = pending / hop;
    if (frames == 0) return 0;
    const size_t len = size_t(frames) * hop;
    for (int r = 0; r < rows; ++r) {
      float* row = stage.data() + size_t(r) * stage_stride;
      std::memcpy(enc_audio.data() + r * len, row, len * sizeof(float));
      std::memmove(row, row + len, size_t(pending - int(len)) * sizeof(float));
    }
    pending -= int(len);
    run(encoder, frames);
    if (morph_present) run_morph(frames);
    run(decoder, frames);
    return int(len);
  }

  // run_hops without the FIFO: the decoded samples past the synthesis delay straight into
  // output[c] (a stereo model's duplicated pair folded back by the mean, as pop_output does);
  // returns how many.
  int aligned_chunk(const float* const* input, float* const* output, int n) {
    const int len = run_hops(input, n);
    const int first = drop_delay(len);
    const int k = len - first;
    const bool fold = model.audio_channels == 2 && config.channels == 1;
    for (int c = 0; c < config.channels && k > 0; ++c) {
      float* dst = output[c];
      if (fold) {
        const float* a = dec_audio.data() + first;
        const float* b = dec_audio.data() + size_t(len) + first;
        for (int i = 0; i < k; ++i) dst[i] = 0.5f * (a[i] + b[i]);
      } else {
        std::memcpy(dst, dec_audio.data() + size_t(c) * len + first, size_t(k) * sizeof(float));
      }
    }
    return k;
  }

  void process_chunk(const float* const* input, float* const* output, int n) {
    if (const int len = run_hops(input, n)) push_output(len);
    if (fifo_size < n)  // cannot happen while latency >= hop - 1 + synthesis_delay
      throw EngineError("internal error: output FIFO underflow (the manifest's latency_samples "
                        "is smaller than hop - 1 + synthesis_delay)");
    pop_output(output, n);
  }
};

Engine::Engine(const std::string& model_dir, const EngineConfig& config)
    : impl_(new Impl) {
  init_ort_api();
  Impl& m = *impl_;
  m.config = config;
  if (config.channels < 1 || config.channels > kMaxChannels)
    throw EngineError("channels must be 1.." + std::to_string(kMaxChannels) + ", got " +
                      std::to_string(config.channels));
  if (config.max_block < 1 || config.max_block > (1 << 20))
    throw EngineError("max_block must be 1..1048576, got " + std::to_string(config.max_block));
  std::string dir = model_dir;
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  ManifestReader r{dir + "/manifest.json"};
  std::string text;
  {
    std::ifstream probe(r.path, std::ios::binary);
    if (!probe)
      throw EngineError("'" + dir + "' has no manifest.json: it is not an ONNX export directory "
                        "(create one with `star export MODEL -o DIR`)");
  }
  text = read_file(r.path);
  Json manifest = JsonParser(text, r.path).parse();
  if (manifest.kind != Json::Object || r.text(manifest, "format", "manifest") != kFormat)
    throw EngineError("'" + r.path + "' is not a STAR ONNX manifest (format != 'star-onnx')");
  int version = r.integer(manifest, "format_version", "manifest");
  if (version != kFormatVersion)
    throw EngineError("'" + r.path + "' was exported by star_plugin " +
                      r.text(manifest, "star_plugin_version", "") + " in ONNX format version " +
                      std::to_string(version) + "; this engine reads version " +
                      std::to_string(kFormatVersion) + ". Re-export the model");
  const Json& info = r.need(manifest, "model", Json::Object, "manifest");
  ModelInfo& mi = m.model;
  mi.name = r.text(info, "name", "model");
  mi.family = r.text(info, "family", "model");
  mi.backbone = r.text(info, "backbone", "model");
  mi.producer_version = r.text(manifest, "star_plugin_version", "manifest");
  mi.sample_rate = r.integer(info, "sample_rate", "model");
  mi.hop = r.integer(info, "hop", "model");
  mi.latency_samples = r.integer(info, "latency_samples", "model");
  mi.synthesis_delay = r.integer(info, "synthesis_delay", "model");
  mi.audio_channels = r.integer(info, "audio_channels", "model");
  mi.latent_channels = r.integer(info, "latent_channels", "model");
  mi.structure_channels = r.integer(info, "structure_channels", "model");
  if (info.find("tail_samples") != nullptr)  // measured at export since star_plugin 0.x
    mi.tail_samples = std::max(0, r.integer(info, "tail_samples", "model"));
  if (const Json* causal = info.find("causal"))
    if (causal->kind == Json::Bool && !causal->boolean)
      r.fail("model '" + mi.name + "' is bidirectional (not causal) and cannot stream");
  if (mi.hop < 1 || mi.sample_rate < 1 || mi.latent_channels < 1 || mi.synthesis_delay < 0 ||
      mi.latency_samples < mi.hop - 1 + mi.synthesis_delay)
    r.fail("the model section is inconsistent (hop " + std::to_string(mi.hop) + ", latency " +
           std::to_string(mi.latency_samples) + ", synthesis delay " +
           std::to_string(mi.synthesis_delay) + ")");
  if (mi.audio_channels == 1) {
    m.batch = config.channels;
  } else if (mi.audio_channels == 2 && (config.channels == 1 || config.channels % 2 == 0)) {
    m.batch = std::max(1, config.channels / 2);
  } else {
    throw EngineError("model '" + mi.name + "' takes " + std::to_string(mi.audio_channels) +
                      " audio channels; a host with " + std::to_string(config.channels) +
                      " channels cannot feed it (use 1 or an even count)");
  }
  m.rows = m.batch * mi.audio_channels;
  m.cpu = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
  m.open_graph(m.encoder, dir, manifest, r, "encoder_stream");
  m.open_graph(m.decoder, dir, manifest, r, "decoder_stream");
  m.open_morph(dir, manifest, r);
  m.build_buffers();
  m.reset();
}

Engine::~Engine() = default;

const ModelInfo& Engine::model() const { return impl_->model; }
const std::vector<StateInfo>& Engine::states() const { return impl_->state_infos; }
int Engine::latency_samples() const { return impl_->model.latency_samples; }
int Engine::sample_rate() const { return impl_->model.sample_rate; }
int Engine::channels() const { return impl_->config.channels; }
int Engine::max_block() const { return impl_->config.max_block; }
uint64_t Engine::sanitized_samples() const { return impl_->sanitized; }
void Engine::reset() { impl_->reset(); }
bool Engine::has_morph() const { return impl_->morph_present; }
MorphTargets Engine::morph_targets() const {
  MorphTargets t;
  t.structure_amount = impl_->target_structure.load(std::memory_order_relaxed);
  t.texture_amount = impl_->target_texture.load(std::memory_order_relaxed);
  t.temperature = impl_->target_temperature.load(std::memory_order_relaxed);
  return t;
}
int Engine::texture_frames() const {
  return impl_->published_frames.load(std::memory_order_relaxed);
}

void Engine::set_morph(const MorphTargets& t) {
  auto clamp = [](float v, float lo, float hi) {
    return std::isfinite(v) ? std::min(hi, std::max(lo, v)) : lo;
  };
  impl_->target_structure.store(clamp(t.structure_amount, 0.f, 1.f), std::memory_order_relaxed);
  impl_->target_texture.store(clamp(t.texture_amount, 0.f, 1.f), std::memory_order_relaxed);
  impl_->target_temperature.store(clamp(t.temperature, 0.f, 4.f), std::memory_order_relaxed);
}

void Engine::set_texture(const std::vector<float>& latent, int frames, SourceMode mode) {
  Impl& m = *impl_;
  const int C = m.model.latent_channels;
  if (frames < 1 || latent.size() != size_t(C) * size_t(frames))
    throw EngineError("a texture source must be " + std::to_string(C) + " latent channels x "
                      "at least 1 frame, got " + std::to_string(latent.size()) + " values for " +
                      std::to_string(frames) + " frames");
  std::vector<float> mean(size_t(C), 0.f);
  for (int c = 0; c < C; ++c) {
    double sum = 0.0;
    for (int i = 0; i < frames; ++i) sum += latent[size_t(c) * frames + i];
    mean[size_t(c)] = float(sum / frames);
  }
  std::unique_ptr<Texture> next(new Texture);
  next->latent = latent;
  next->mean.swap(mean);
  next->mode = mode;
  next->frames = frames;
  m.publish(next.release());
}

void Engine::clear_texture() { impl_->publish(new Texture); }

void Engine::release_retired_texture() { impl_->release_retired(); }

std::vector<float> Engine::encode_texture(const float* audio, int samples, int* frames) {
  Impl& m = *impl_;
  if (samples < 1) throw EngineError("a texture source needs at least one sample");
  if (m.offline_encoder_file.empty())
    throw EngineError("the export lists no offline 'encoder' graph to encode a texture with");
  if (!m.offline_encoder) m.offline_encoder = m.make_session(m.offline_encoder_file);
  const int A = m.model.audio_channels;
  std::vector<float> input(size_t(A) * samples);
  for (int a = 0; a < A; ++a) std::copy(audio, audio + samples, input.begin() + size_t(a) * samples);
  for (float& x : input)
    if (!(std::fabs(x) <= kSampleLimit)) x = std::isfinite(x) ? (x > 0 ? kSampleLimit : -kSampleLimit) : 0.f;
  int64_t shape[3] = {1, A, samples};
  Ort::Value value = Ort::Value::CreateTensor<float>(m.cpu, input.data(), input.size(), shape, 3);
  const char* in_name[1] = {"audio"};
  const char* out_names[2] = {"mean", "logsigma"};
  try {
    auto out = m.offline_encoder.Run(Ort::RunOptions{nullptr}, in_name, &value, 1, out_names, 2);
    auto dims = out[0].GetTensorTypeAndShapeInfo().GetShape();
    if (dims.size() != 3 || dims[1] != m.model.latent_channels || dims[2] < 1)
      throw EngineError("'" + m.offline_encoder_file + "' returned a latent of an unexpected shape");
    const float* data = out[0].GetTensorData<float>();
    *frames = int(dims[2]);
    return std::vector<float>(data, data + size_t(dims[1]) * size_t(dims[2]));
  } catch (const Ort::Exception& e) {
    throw EngineError(std::string("encoding the texture source failed: ") + e.what());
  }
}

// process() and process_aligned(): the block in pieces of at most max_block samples; `step`
// gets the piece's input pointers, its offset and length, and returns how far to advance the
// output pointers (the piece's length; for the aligned stream, the samples it emitted).
template <class Step>
static int for_each_piece(int channels, int max_block, const float* const* input,
                          float* const* output, int samples, Step step) {
  const float* in[kMaxChannels];
  float* out[kMaxChannels];
  int written = 0;
  for (int done = 0; done < samples;) {
    int n = std::min(samples - done, max_block);
    for (int c = 0; c < channels; ++c) {
      in[c] = input[c] + done;
      out[c] = output[c] + written;
    }
    try {
      written += step(in, out, n);
    } catch (const Ort::Exception& e) {
      throw EngineError(std::string("ONNX Runtime failed while streaming: ") + e.what());
    }
    done += n;
  }
  return written;
}

void Engine::process(const float* const* input, float* const* output, int samples) {
  Impl& m = *impl_;
  for_each_piece(m.config.channels, m.config.max_block, input, output, samples,
                 [&m](const float* const* in, float* const* out, int n) {
                   m.process_chunk(in, out, n);
                   return n;
                 });
}

int Engine::process_aligned(const float* const* input, int samples, float* const* output,
                            int capacity) {
  Impl& m = *impl_;
  const int64_t whole = (int64_t(m.pending) + std::max(0, samples)) / m.hop * m.hop;
  const int64_t emitted = whole - std::min<int64_t>(m.skip, whole);
  if (emitted > capacity)
    throw EngineError("process_aligned: " + std::to_string(samples) + " samples emit " +
                      std::to_string(emitted) + " but the output holds " +
                      std::to_string(capacity) + " (give samples + hop - 1)");
  return for_each_piece(m.config.channels, m.config.max_block, input, output, samples,
                        [&m](const float* const* in, float* const* out, int n) {
                          return m.aligned_chunk(in, out, n);
                        });
}

std::string Engine::runtime_version() {
  const OrtApiBase* base = OrtGetApiBase();
  return base ? base->GetVersionString() : "?";
}

}  // namespace star
