// Metrics: counters, gauges and histograms with labels, and their Prometheus
// text exposition (format 0.0.4).
//
// Hot path: a series (one label set of a family) is created once, under the
// family's mutex, and the caller keeps the returned reference (it lives as
// long as the registry); updating it is one relaxed atomic operation (a
// histogram: a short scan of its bucket bounds and three). Nothing on the
// hot path builds a string or looks up a map.
// Series that must go away with what they describe (a deleted topic's)
// are taken with Family::shared() and dropped with Family::remove().
//
// Values that are cheaper to read when scraped than to keep up to date (log
// sizes, consumer lag, connection counts) come from collectors: callbacks the
// registry runs on the scraping thread, which write their families through a
// MetricWriter.
//
// Thread safety: everything may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace holdfast::metrics {

enum class Type { counter, gauge, histogram };
const char* to_string(Type type);

class Counter {
 public:
  void inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Gauge {
 public:
  void set(int64_t v) { value_.store(v, std::memory_order_relaxed); }
  void add(int64_t n) { value_.fetch_add(n, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

// Fixed buckets given by their upper bounds (ascending, finite; +Inf is
// implicit). Buckets are stored non-cumulative and summed when exposed, so the
// +Inf bucket always equals the count.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double value);

  const std::vector<double>& bounds() const { return bounds_; }
  // Cumulative counts, one per bound plus the +Inf bucket (last).
  std::vector<uint64_t> cumulative_counts() const;
  double sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // bounds_.size() + 1
  std::atomic<double> sum_{0.0};
};

// Latency buckets in seconds, 50 µs .. 10 s.
const std::vector<double>& latency_buckets_seconds();

using Labels = std::vector<std::pair<std::string, std::string>>;

// Writes Prometheus text. A family is opened with begin() (HELP and TYPE
// lines) and its samples follow; names and label names are checked
// (programming errors throw std::invalid_argument), label values and help
// text are escaped.
class MetricWriter {
 public:
  void begin(std::string_view name, std::string_view help, Type type);
  // A sample of the current family: `suffix` is "" or, for histograms,
  // "_bucket" / "_sum" / "_count".
  void sample(const Labels& labels, double value, std::string_view suffix = "");
  void sample(const Labels& labels, uint64_t value, std::string_view suffix = "");
  void sample(const Labels& labels, int64_t value, std::string_view suffix = "");
  // All samples of one histogram series.
  void histogram(const Labels& labels, const Histogram& h);

  const std::string& text() const { return out_; }
  std::string take() { return std::move(out_); }

 private:
  void write_series_name(const Labels& labels, std::string_view suffix);

  std::string out_;
  std::string family_;
};

bool valid_metric_name(std::string_view name);
bool valid_label_name(std::string_view name);
std::string escape_label_value(std::string_view value);
// Shortest text that reads back as the same double; +Inf, -Inf, NaN as Prometheus spells them.
std::string format_value(double value);

class FamilyBase {
 public:
  FamilyBase(std::string name, std::string help, Type type, std::vector<std::string> label_names);
  virtual ~FamilyBase() = default;
  const std::string& name() const { return name_; }
  virtual void write(MetricWriter& out) const = 0;

 protected:
  Labels labels_for(const std::vector<std::string>& values) const;

  const std::string name_;
  const std::string help_;
  const Type type_;
  const std::vector<std::string> label_names_;
  mutable std::mutex mu_;
};

// One metric name with a fixed set of label names; a series per label values.
template <typename T>
class Family final : public FamilyBase {
 public:
  using FamilyBase::FamilyBase;
  // Histograms only: the bucket bounds every series of the family uses.
  void set_bounds(std::vector<double> bounds) { bounds_ = std::move(bounds); }

  // The series for these label values (as many as label names), created on
  // first use. The reference stays valid for the registry's lifetime: keep it.
  T& with(const std::vector<std::string>& values) { return *shared(values); }

  // The same series as with(), shared: for series that remove() may drop
  // (per-topic series of a deleted topic). A holder may keep updating its
  // pointer after the removal; the updates are simply no longer exposed.
  std::shared_ptr<T> shared(const std::vector<std::string>& values) {
    if (values.size() != label_names_.size()) {
      throw std::invalid_argument("metric " + name_ + ": wrong number of label values");
    }
    std::lock_guard lock(mu_);
    auto it = series_.find(values);
    if (it == series_.end()) it = series_.emplace(values, make()).first;
    return it->second;
  }

  // Drops the series from the exposition; a later with()/shared() of the same
  // label values starts a new series from zero. Only for series obtained
  // through shared(): a reference from with() would dangle. False if absent.
  bool remove(const std::vector<std::string>& values) {
    std::lock_guard lock(mu_);
    return series_.erase(values) > 0;
  }

  void write(MetricWriter& out) const override;

 private:
  std::shared_ptr<T> make() const;

  std::vector<double> bounds_;
  std::map<std::vector<std::string>, std::shared_ptr<T>> series_;
};

// Defined in metrics.cc for the three series types.
template <>
std::shared_ptr<Counter> Family<Counter>::make() const;
template <>
std::shared_ptr<Gauge> Family<Gauge>::make() const;
template <>
std::shared_ptr<Histogram> Family<Histogram>::make() const;
template <>
void Family<Counter>::write(MetricWriter& out) const;
template <>
void Family<Gauge>::write(MetricWriter& out) const;
template <>
void Family<Histogram>::write(MetricWriter& out) const;

class Registry {
 public:
  Family<Counter>& counter(std::string name, std::string help,
                           std::vector<std::string> label_names = {});
  Family<Gauge>& gauge(std::string name, std::string help,
                       std::vector<std::string> label_names = {});
  Family<Histogram>& histogram(std::string name, std::string help,
                               std::vector<std::string> label_names,
                               std::vector<double> bounds = latency_buckets_seconds());
  // Runs at every scrape, after the families, in the order added.
  void add_collector(std::function<void(MetricWriter&)> collector);

  // The whole exposition: families in registration order, then collectors.
  std::string expose() const;

 private:
  void check_new_name(const std::string& name);

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<FamilyBase>> families_;
  std::vector<std::function<void(MetricWriter&)>> collectors_;
};

}  // namespace holdfast::metrics
