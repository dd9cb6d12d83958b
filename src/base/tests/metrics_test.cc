#include "base/metrics.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace holdfast::metrics {
namespace {

// A strict reader of the Prometheus text format (0.0.4), written for these
// tests: it rejects anything the format does not allow and checks the rules
// a scraper relies on (TYPE before samples, one TYPE per family, samples of a
// family contiguous, histogram buckets cumulative with +Inf == _count).
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

struct Parsed {
  std::map<std::string, std::string> types;  // family -> type
  std::map<std::string, std::string> help;
  std::vector<Sample> samples;
  std::string error;  // empty when the text is valid

  double value(const std::string& name, const std::map<std::string, std::string>& labels) const {
    for (const auto& s : samples) {
      if (s.name == name && s.labels == labels) return s.value;
    }
    return NAN;
  }
};

bool is_name_start(char c) {
  return std::isalpha(uint8_t(c)) || c == '_' || c == ':';
}
bool is_name_char(char c) {
  return is_name_start(c) || std::isdigit(uint8_t(c));
}

std::string family_of(const std::string& sample_name,
                      const std::map<std::string, std::string>& types) {
  if (types.count(sample_name)) return sample_name;
  for (const char* suffix : {"_bucket", "_sum", "_count"}) {
    std::string s = suffix;
    if (sample_name.size() > s.size() && sample_name.ends_with(s)) {
      std::string base = sample_name.substr(0, sample_name.size() - s.size());
      auto it = types.find(base);
      if (it != types.end() && it->second == "histogram") return base;
    }
  }
  return "";
}

Parsed parse_exposition(const std::string& text) {
  Parsed p;
  auto fail = [&](int line, const std::string& why) {
    if (p.error.empty()) p.error = "line " + std::to_string(line) + ": " + why;
  };
  if (!text.empty() && text.back() != '\n') fail(0, "text does not end with a newline");
  std::istringstream in(text);
  std::string line;
  int n = 0;
  std::string current_family;
  std::set<std::string> finished_families;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) {
      fail(n, "empty line");
      continue;
    }
    if (line[0] == '#') {
      std::istringstream words(line);
      std::string hash, kind, name;
      words >> hash >> kind >> name;
      if (kind != "HELP" && kind != "TYPE") {
        fail(n, "comment that is neither HELP nor TYPE");
        continue;
      }
      if (name.empty() || !is_name_start(name[0])) fail(n, "bad family name '" + name + "'");
      for (char c : name) {
        if (!is_name_char(c)) fail(n, "bad family name '" + name + "'");
      }
      if (kind == "TYPE") {
        std::string type;
        words >> type;
        if (type != "counter" && type != "gauge" && type != "histogram") {
          fail(n, "unknown type '" + type + "'");
        }
        if (p.types.count(name)) fail(n, "second TYPE for " + name);
        p.types[name] = type;
        if (!current_family.empty() && current_family != name) {
          finished_families.insert(current_family);
        }
        current_family = name;
      } else {
        if (p.help.count(name)) fail(n, "second HELP for " + name);
        p.help[name] = line.size() > 7 + name.size() ? line.substr(8 + name.size()) : "";
      }
      continue;
    }
    Sample s;
    size_t i = 0;
    if (!is_name_start(line[0])) fail(n, "sample name must start with a letter");
    while (i < line.size() && is_name_char(line[i])) s.name += line[i++];
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        std::string label;
        if (!is_name_start(line[i]) || line[i] == ':') fail(n, "bad label name");
        while (i < line.size() && (std::isalnum(uint8_t(line[i])) || line[i] == '_')) {
          label += line[i++];
        }
        if (i + 1 >= line.size() || line[i] != '=' || line[i + 1] != '"') {
          fail(n, "expected =\" after label " + label);
          break;
        }
        i += 2;
        std::string value;
        bool closed = false;
        while (i < line.size()) {
          char c = line[i++];
          if (c == '"') {
            closed = true;
            break;
          }
          if (c == '\\') {
            if (i >= line.size()) break;
            char e = line[i++];
            if (e == 'n') {
              value += '\n';
            } else if (e == '\\' || e == '"') {
              value += e;
            } else {
              fail(n, "bad escape in label value");
            }
          } else {
            value += c;
          }
        }
        if (!closed) fail(n, "unterminated label value");
        if (s.labels.count(label)) fail(n, "duplicate label " + label);
        s.labels[label] = value;
        if (i < line.size() && line[i] == ',') ++i;
      }
      if (i >= line.size() || line[i] != '}') {
        fail(n, "unterminated label set");
        continue;
      }
      ++i;
    }
    if (i >= line.size() || line[i] != ' ') {
      fail(n, "expected one space before the value");
      continue;
    }
    std::string value = line.substr(i + 1);
    if (value == "+Inf") {
      s.value = INFINITY;
    } else if (value == "-Inf") {
      s.value = -INFINITY;
    } else if (value == "NaN") {
      s.value = NAN;
    } else {
      size_t used = 0;
      try {
        s.value = std::stod(value, &used);
      } catch (...) {
        used = 0;
      }
      if (used != value.size() || value.empty()) fail(n, "bad value '" + value + "'");
    }
    const std::string family = family_of(s.name, p.types);
    if (family.empty()) fail(n, "sample " + s.name + " before its TYPE line");
    if (family != current_family || finished_families.count(family)) {
      fail(n, "samples of " + family + " are not contiguous under its TYPE");
    }
    if (p.types[family] == "counter" && !(s.value >= 0)) fail(n, "negative counter");
    p.samples.push_back(std::move(s));
  }
  // Histograms: per series (labels without le), buckets ascending in le and
  // non-decreasing in count, the last le="+Inf" equal to _count.
  for (const auto& [family, type] : p.types) {
    if (type != "histogram") continue;
    std::map<std::map<std::string, std::string>, std::vector<std::pair<double, double>>> buckets;
    std::map<std::map<std::string, std::string>, double> counts;
    for (const auto& s : p.samples) {
      if (s.name == family + "_bucket") {
        auto labels = s.labels;
        auto le = labels.find("le");
        if (le == labels.end()) {
          p.error = family + "_bucket without le";
          return p;
        }
        double bound = le->second == "+Inf" ? INFINITY : std::stod(le->second);
        labels.erase(le);
        buckets[labels].emplace_back(bound, s.value);
      } else if (s.name == family + "_count") {
        counts[s.labels] = s.value;
      } else if (s.name == family) {
        p.error = "histogram " + family + " has a bare sample";
      }
    }
    for (const auto& [labels, list] : buckets) {
      for (size_t i = 1; i < list.size(); ++i) {
        if (!(list[i].first > list[i - 1].first)) p.error = family + ": le not ascending";
        if (list[i].second < list[i - 1].second) p.error = family + ": bucket counts decrease";
      }
      if (list.empty() || !std::isinf(list.back().first)) p.error = family + ": no +Inf bucket";
      if (!counts.count(labels) || counts[labels] != list.back().second) {
        p.error = family + ": +Inf bucket differs from _count";
      }
    }
  }
  return p;
}

TEST(MetricsTest, ParserRejectsMalformedText) {
  EXPECT_FALSE(parse_exposition("x 1\n").error.empty());  // no TYPE
  EXPECT_FALSE(parse_exposition("# TYPE x counter\nx{a=\"b} 1\n").error.empty());
  EXPECT_FALSE(parse_exposition("# TYPE x counter\nx{1a=\"b\"} 1\n").error.empty());
  EXPECT_FALSE(parse_exposition("# TYPE x counter\nx 1x\n").error.empty());
  EXPECT_FALSE(parse_exposition("# TYPE x counter\nx 1").error.empty());
  EXPECT_FALSE(
      parse_exposition("# TYPE h histogram\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 1\n"
                       "h_sum 1\nh_count 1\n")
          .error.empty());
  EXPECT_FALSE(parse_exposition("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 3\nh_sum 1\nh_count 2\n")
                   .error.empty());
  EXPECT_TRUE(parse_exposition("# TYPE x counter\nx{a=\"q\\\"\\n\\\\\"} 1\n").error.empty());
}

TEST(MetricsTest, CountersAndGaugesWithLabelsExposeAndParseBack) {
  Registry registry;
  auto& messages = registry.counter("test_messages_total", "Messages in.", {"topic"});
  auto& connections = registry.gauge("test_connections", "Open connections.");
  Counter& a = messages.with({"orders"});
  Counter& b = messages.with({"weird \"topic\"\\with\nnewline"});
  a.inc(5);
  a.inc();
  b.inc(2);
  EXPECT_EQ(&messages.with({"orders"}), &a);  // the same series, created once
  connections.with({}).set(3);
  connections.with({}).add(-1);

  Parsed p = parse_exposition(registry.expose());
  ASSERT_EQ(p.error, "") << registry.expose();
  EXPECT_EQ(p.types["test_messages_total"], "counter");
  EXPECT_EQ(p.types["test_connections"], "gauge");
  EXPECT_EQ(p.help["test_messages_total"], "Messages in.");
  EXPECT_EQ(p.value("test_messages_total", {{"topic", "orders"}}), 6);
  EXPECT_EQ(p.value("test_messages_total", {{"topic", "weird \"topic\"\\with\nnewline"}}), 2);
  EXPECT_EQ(p.value("test_connections", {}), 2);
}

TEST(MetricsTest, RemovedSeriesLeavesTheExpositionAndComesBackFromZero) {
  Registry registry;
  auto& messages = registry.counter("test_messages_total", "Messages in.", {"topic"});
  std::shared_ptr<Counter> gone = messages.shared({"gone"});
  messages.shared({"kept"})->inc(3);
  gone->inc(7);
  EXPECT_EQ(messages.shared({"gone"}), gone);  // shared() finds the same series

  EXPECT_TRUE(messages.remove({"gone"}));
  EXPECT_FALSE(messages.remove({"gone"}));
  gone->inc();  // a holder may still update it: it is alive, just not exposed
  Parsed p = parse_exposition(registry.expose());
  ASSERT_EQ(p.error, "") << registry.expose();
  EXPECT_TRUE(std::isnan(p.value("test_messages_total", {{"topic", "gone"}})));
  EXPECT_EQ(p.value("test_messages_total", {{"topic", "kept"}}), 3);

  messages.shared({"gone"})->inc(2);  // the same labels again: a new series from zero
  p = parse_exposition(registry.expose());
  ASSERT_EQ(p.error, "");
  EXPECT_EQ(p.value("test_messages_total", {{"topic", "gone"}}), 2);
}

TEST(MetricsTest, HistogramBucketsAreCumulativeAndInfEqualsCount) {
  Registry registry;
  auto& latency =
      registry.histogram("test_latency_seconds", "Latency.", {"request"}, {0.001, 0.01, 0.1});
  Histogram& h = latency.with({"Produce"});
  h.observe(0.0005);
  h.observe(0.001);  // le is inclusive
  h.observe(0.05);
  h.observe(7);
  Parsed p = parse_exposition(registry.expose());
  ASSERT_EQ(p.error, "") << registry.expose();
  EXPECT_EQ(p.value("test_latency_seconds_bucket", {{"request", "Produce"}, {"le", "0.001"}}), 2);
  EXPECT_EQ(p.value("test_latency_seconds_bucket", {{"request", "Produce"}, {"le", "0.01"}}), 2);
  EXPECT_EQ(p.value("test_latency_seconds_bucket", {{"request", "Produce"}, {"le", "0.1"}}), 3);
  EXPECT_EQ(p.value("test_latency_seconds_bucket", {{"request", "Produce"}, {"le", "+Inf"}}), 4);
  EXPECT_EQ(p.value("test_latency_seconds_count", {{"request", "Produce"}}), 4);
  EXPECT_DOUBLE_EQ(p.value("test_latency_seconds_sum", {{"request", "Produce"}}), 7.0515);
}

TEST(MetricsTest, ConcurrentUpdatesAreAllCounted) {
  Registry registry;
  Counter& c = registry.counter("test_total", "t").with({});
  Histogram& h = registry.histogram("test_seconds", "t", {}).with({});
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        c.inc();
        h.observe(0.001 * (i % 7));
      }
    });
  }
  for (auto& t : threads) t.join();
  Parsed p = parse_exposition(registry.expose());
  ASSERT_EQ(p.error, "");
  EXPECT_EQ(p.value("test_total", {}), kThreads * kPerThread);
  EXPECT_EQ(p.value("test_seconds_count", {}), kThreads * kPerThread);
}

TEST(MetricsTest, CollectorsWriteFamiliesAtScrapeTime) {
  Registry registry;
  registry.counter("test_first_total", "first").with({}).inc();
  int64_t lag = 7;
  registry.add_collector([&lag](MetricWriter& out) {
    out.begin("test_lag", "Lag.", Type::gauge);
    out.sample({{"group", "g"}, {"topic", "t"}, {"partition", "0"}}, lag);
  });
  Parsed p = parse_exposition(registry.expose());
  ASSERT_EQ(p.error, "");
  EXPECT_EQ(p.value("test_lag", {{"group", "g"}, {"topic", "t"}, {"partition", "0"}}), 7);
  lag = 9;
  p = parse_exposition(registry.expose());
  EXPECT_EQ(p.value("test_lag", {{"group", "g"}, {"topic", "t"}, {"partition", "0"}}), 9);
}

TEST(MetricsTest, InvalidNamesAreProgrammingErrors) {
  Registry registry;
  EXPECT_THROW(registry.counter("1bad", "x"), std::invalid_argument);
  EXPECT_THROW(registry.counter("ok_total", "x", {"bad-label"}), std::invalid_argument);
  EXPECT_THROW(registry.histogram("h", "x", {"le"}), std::invalid_argument);
  EXPECT_THROW(registry.histogram("h2", "x", {}, {0.2, 0.1}), std::invalid_argument);
  registry.counter("dup_total", "x");
  EXPECT_THROW(registry.counter("dup_total", "x"), std::invalid_argument);
  auto& f = registry.counter("labelled_total", "x", {"a"});
  EXPECT_THROW(f.with({}), std::invalid_argument);
}

TEST(MetricsTest, ValuesFormatAsPrometheusReadsThem) {
  EXPECT_EQ(format_value(0.25), "0.25");
  EXPECT_EQ(format_value(INFINITY), "+Inf");
  EXPECT_EQ(format_value(-INFINITY), "-Inf");
  EXPECT_EQ(format_value(NAN), "NaN");
  EXPECT_EQ(std::stod(format_value(0.1)), 0.1);
}

}  // namespace
}  // namespace holdfast::metrics
