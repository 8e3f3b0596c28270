// Every `*_total` series is a counter (issue 18, item 7): the engine's running totals are fed to
// counters that only ever grow, whatever the totals they are observed from do.
#include <gtest/gtest.h>

#include <sstream>

#include "metrics/metrics.h"

namespace turbine::metrics {
namespace {

double sample(const std::string& text, const std::string& series) {
  const size_t at = text.find("\n" + series + " ");
  EXPECT_NE(at, std::string::npos) << series << "\n" << text;
  return at == std::string::npos ? -1 : std::stod(text.substr(at + series.size() + 2));
}

TEST(CounterTypesTest, EveryTotalIsACounter) {
  FrontendMetrics m("stories");
  engine::EngineStats st;
  st.cancelled = 1;
  st.kv_imports = 2;
  st.kv_transports = {{"tcp", 1, 0, 10, 0.5}};
  m.model("stories").observe_engine(st);
  std::istringstream lines(m.serialize());
  int totals = 0;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("# TYPE ", 0) != 0) continue;
    std::istringstream f(line.substr(7));
    std::string name, type;
    f >> name >> type;
    if (name.size() > 6 && name.ends_with("_total")) {
      ++totals;
      EXPECT_EQ(type, "counter") << name;
    }
  }
  EXPECT_GE(totals, 20);
}

TEST(CounterTypesTest, CountersFollowTotalsAndNeverGoDown) {
  FrontendMetrics m("stories");
  ModelMetrics& mm = m.model("stories");
  const std::string series = "turbine_engine_cancelled_requests_total{model=\"stories\"}";
  engine::EngineStats st;
  st.cancelled = 3;
  mm.observe_engine(st);
  EXPECT_EQ(sample(m.serialize(), series), 3);
  st.cancelled = 5;
  mm.observe_engine(st);
  EXPECT_EQ(sample(m.serialize(), series), 5);
  st.cancelled = 2;  // a worker left the router's sum
  mm.observe_engine(st);
  EXPECT_EQ(sample(m.serialize(), series), 5);
  st.cancelled = 4;  // two more since
  mm.observe_engine(st);
  EXPECT_EQ(sample(m.serialize(), series), 7);
}

}  // namespace
}  // namespace turbine::metrics
