#include "base/metrics.h"

#include <charconv>
#include <cmath>
#include <stdexcept>

namespace holdfast::metrics {

const char* to_string(Type type) {
  switch (type) {
    case Type::counter:
      return "counter";
    case Type::gauge:
      return "gauge";
    case Type::histogram:
      return "histogram";
  }
  return "untyped";
}

// ---- Histogram ----

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i + 1 < bounds_.size(); ++i) {
    if (!(bounds_[i] < bounds_[i + 1])) {
      throw std::invalid_argument("histogram bounds must be strictly ascending");
    }
  }
  for (double b : bounds_) {
    if (!std::isfinite(b)) throw std::invalid_argument("histogram bounds must be finite");
  }
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double value) {
  size_t i = 0;
  while (i < bounds_.size() && value > bounds_[i]) ++i;  // le: value <= bound
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(value, std::memory_order_relaxed);
}

std::vector<uint64_t> Histogram::cumulative_counts() const {
  std::vector<uint64_t> out(bounds_.size() + 1);
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    total += counts_[i].load(std::memory_order_relaxed);
    out[i] = total;
  }
  return out;
}

const std::vector<double>& latency_buckets_seconds() {
  static const std::vector<double> buckets{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                           0.005,   0.01,   0.025,   0.05,   0.1,   0.25,
                                           0.5,     1,      2.5,     5,      10};
  return buckets;
}

// ---- Text format ----

bool valid_metric_name(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

bool valid_label_name(std::string_view name) {
  if (name.empty() || name.starts_with("__")) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

std::string escape_label_value(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

namespace {

std::string escape_help(std::string_view help) {
  std::string out;
  for (char c : help) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string format_value(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  return std::string(buf, end);
}

void MetricWriter::begin(std::string_view name, std::string_view help, Type type) {
  if (!valid_metric_name(name)) {
    throw std::invalid_argument("invalid metric name '" + std::string(name) + "'");
  }
  family_ = name;
  out_ += "# HELP ";
  out_ += name;
  out_ += ' ';
  out_ += escape_help(help);
  out_ += "\n# TYPE ";
  out_ += name;
  out_ += ' ';
  out_ += to_string(type);
  out_ += '\n';
}

void MetricWriter::write_series_name(const Labels& labels, std::string_view suffix) {
  if (family_.empty()) throw std::logic_error("metric sample before begin()");
  out_ += family_;
  out_ += suffix;
  if (labels.empty()) return;
  out_ += '{';
  bool first = true;
  for (const auto& [name, value] : labels) {
    if (!valid_label_name(name)) {
      throw std::invalid_argument("invalid label name '" + name + "' in " + family_);
    }
    if (!first) out_ += ',';
    first = false;
    out_ += name;
    out_ += "=\"";
    out_ += escape_label_value(value);
    out_ += '"';
  }
  out_ += '}';
}

void MetricWriter::sample(const Labels& labels, double value, std::string_view suffix) {
  write_series_name(labels, suffix);
  out_ += ' ';
  out_ += format_value(value);
  out_ += '\n';
}

void MetricWriter::sample(const Labels& labels, uint64_t value, std::string_view suffix) {
  write_series_name(labels, suffix);
  out_ += ' ';
  out_ += std::to_string(value);
  out_ += '\n';
}

void MetricWriter::sample(const Labels& labels, int64_t value, std::string_view suffix) {
  write_series_name(labels, suffix);
  out_ += ' ';
  out_ += std::to_string(value);
  out_ += '\n';
}

void MetricWriter::histogram(const Labels& labels, const Histogram& h) {
  const auto counts = h.cumulative_counts();
  Labels with_le = labels;
  with_le.emplace_back("le", "");
  for (size_t i = 0; i < h.bounds().size(); ++i) {
    with_le.back().second = format_value(h.bounds()[i]);
    sample(with_le, counts[i], "_bucket");
  }
  with_le.back().second = "+Inf";
  sample(with_le, counts.back(), "_bucket");
  sample(labels, h.sum(), "_sum");
  sample(labels, counts.back(), "_count");
}

// ---- Families ----

FamilyBase::FamilyBase(std::string name, std::string help, Type type,
                       std::vector<std::string> label_names)
    : name_(std::move(name)),
      help_(std::move(help)),
      type_(type),
      label_names_(std::move(label_names)) {
  if (!valid_metric_name(name_)) throw std::invalid_argument("invalid metric name '" + name_ + "'");
  for (const auto& l : label_names_) {
    if (!valid_label_name(l) || (type_ == Type::histogram && l == "le")) {
      throw std::invalid_argument("invalid label name '" + l + "' for " + name_);
    }
  }
}

Labels FamilyBase::labels_for(const std::vector<std::string>& values) const {
  Labels labels;
  labels.reserve(values.size());
  for (size_t i = 0; i < values.size(); ++i) labels.emplace_back(label_names_[i], values[i]);
  return labels;
}

template <>
std::shared_ptr<Counter> Family<Counter>::make() const {
  return std::make_shared<Counter>();
}
template <>
std::shared_ptr<Gauge> Family<Gauge>::make() const {
  return std::make_shared<Gauge>();
}
template <>
std::shared_ptr<Histogram> Family<Histogram>::make() const {
  return std::make_shared<Histogram>(bounds_);
}

template <>
void Family<Counter>::write(MetricWriter& out) const {
  std::lock_guard lock(mu_);
  out.begin(name_, help_, type_);
  for (const auto& [values, series] : series_) out.sample(labels_for(values), series->value());
}

template <>
void Family<Gauge>::write(MetricWriter& out) const {
  std::lock_guard lock(mu_);
  out.begin(name_, help_, type_);
  for (const auto& [values, series] : series_) out.sample(labels_for(values), series->value());
}

template <>
void Family<Histogram>::write(MetricWriter& out) const {
  std::lock_guard lock(mu_);
  out.begin(name_, help_, type_);
  for (const auto& [values, series] : series_) out.histogram(labels_for(values), *series);
}

// ---- Registry ----

void Registry::check_new_name(const std::string& name) {
  for (const auto& f : families_) {
    if (f->name() == name) throw std::invalid_argument("metric " + name + " registered twice");
  }
}

Family<Counter>& Registry::counter(std::string name, std::string help,
                                   std::vector<std::string> label_names) {
  std::lock_guard lock(mu_);
  check_new_name(name);
  auto family = std::make_unique<Family<Counter>>(std::move(name), std::move(help), Type::counter,
                                                  std::move(label_names));
  auto& ref = *family;
  families_.push_back(std::move(family));
  return ref;
}

Family<Gauge>& Registry::gauge(std::string name, std::string help,
                               std::vector<std::string> label_names) {
  std::lock_guard lock(mu_);
  check_new_name(name);
  auto family = std::make_unique<Family<Gauge>>(std::move(name), std::move(help), Type::gauge,
                                                std::move(label_names));
  auto& ref = *family;
  families_.push_back(std::move(family));
  return ref;
}

Family<Histogram>& Registry::histogram(std::string name, std::string help,
                                       std::vector<std::string> label_names,
                                       std::vector<double> bounds) {
  std::lock_guard lock(mu_);
  check_new_name(name);
  Histogram check(bounds);  // validates the bounds now, not at first use
  auto family = std::make_unique<Family<Histogram>>(std::move(name), std::move(help),
                                                    Type::histogram, std::move(label_names));
  family->set_bounds(std::move(bounds));
  auto& ref = *family;
  families_.push_back(std::move(family));
  return ref;
}

void Registry::add_collector(std::function<void(MetricWriter&)> collector) {
  std::lock_guard lock(mu_);
  collectors_.push_back(std::move(collector));
}

std::string Registry::expose() const {
  MetricWriter out;
  std::vector<std::function<void(MetricWriter&)>> collectors;
  {
    std::lock_guard lock(mu_);
    for (const auto& f : families_) f->write(out);
    collectors = collectors_;
  }
  for (const auto& c : collectors) c(out);  // outside mu_: they may take other locks
  return out.take();
}

}  // namespace holdfast::metrics
