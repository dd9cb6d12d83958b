#include "cli/client/args.h"

#include <cctype>
#include <charconv>
#include <limits>
#include <optional>

#include "net/jaas.h"

namespace holdfast::cli {

ArgResult<int64_t> parse_integer(std::string_view text, int64_t min, int64_t max) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end) {
    return make_error(ArgErrc::kInvalid, "'" + std::string(text) + "' is not an integer");
  }
  if (value < min || value > max) {
    return make_error(ArgErrc::kInvalid, "'" + std::string(text) + "' is out of range [" +
                                             std::to_string(min) + ", " + std::to_string(max) +
                                             "]");
  }
  return value;
}

ArgResult<StartPosition> parse_start_position(std::string_view spec) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  if (spec == "beginning" || spec == "earliest" || spec == "start") {
    return StartPosition{StartPosition::Kind::kBeginning, 0};
  }
  if (spec == "end" || spec == "latest") return StartPosition{StartPosition::Kind::kEnd, 0};
  if (!spec.empty() && spec.front() == '-') {
    auto back = parse_integer(spec.substr(1), 1, kMax);
    if (!back) {
      return make_error(ArgErrc::kInvalid, "--from '" + std::string(spec) +
                                               "': expected -<n>, n messages before the end");
    }
    return StartPosition{StartPosition::Kind::kFromEnd, *back};
  }
  if (!spec.empty() && spec.front() == '@') {
    auto ts = parse_integer(spec.substr(1), 0, kMax);
    if (!ts) {
      return make_error(ArgErrc::kInvalid,
                        "--from '" + std::string(spec) + "': expected @<timestamp in ms>");
    }
    return StartPosition{StartPosition::Kind::kTimestamp, *ts};
  }
  auto offset = parse_integer(spec, 0, kMax);
  if (!offset) {
    return make_error(ArgErrc::kInvalid, "--from '" + std::string(spec) +
                                             "': expected beginning|earliest|start, end|latest, "
                                             "<offset>, -<n> (n before the end) or "
                                             "@<timestamp-ms>");
  }
  return StartPosition{StartPosition::Kind::kOffset, *offset};
}

ArgResult<std::vector<FormatPiece>> parse_format(std::string_view format) {
  using Kind = FormatPiece::Kind;
  std::vector<FormatPiece> pieces;
  auto literal = [&pieces](char c) {
    if (pieces.empty() || pieces.back().kind != Kind::kLiteral) pieces.push_back({Kind::kLiteral, ""});
    pieces.back().text += c;
  };
  for (size_t i = 0; i < format.size(); ++i) {
    char c = format[i];
    if (c == '\\' && i + 1 < format.size()) {
      char e = format[++i];
      literal(e == 'n' ? '\n' : e == 't' ? '\t' : e == 'r' ? '\r' : e);
      continue;
    }
    if (c != '%') {
      literal(c);
      continue;
    }
    if (i + 1 == format.size()) {
      return make_error(ArgErrc::kInvalid, "-f '" + std::string(format) + "': a trailing '%'");
    }
    char f = format[++i];
    Kind kind;
    switch (f) {
      case '%': literal('%'); continue;
      case 't': kind = Kind::kTopic; break;
      case 'p': kind = Kind::kPartition; break;
      case 'o': kind = Kind::kOffset; break;
      case 'k': kind = Kind::kKey; break;
      case 's': kind = Kind::kValue; break;
      case 'T': kind = Kind::kTimestamp; break;
      case 'h': kind = Kind::kHeaders; break;
      case 'K': kind = Kind::kKeySize; break;
      case 'S': kind = Kind::kValueSize; break;
      default:
        return make_error(ArgErrc::kInvalid,
                          "-f: unknown field %" + std::string(1, f) +
                              " (known: %t topic, %p partition, %o offset, %k key, %s value, "
                              "%T timestamp, %h headers, %K key size, %S value size, %% a '%')");
    }
    pieces.push_back({kind, ""});
  }
  return pieces;
}

ArgResult<std::string> print_fields_to_format(std::string_view fields) {
  std::string format;
  bool value = false;
  size_t start = 0;
  while (start <= fields.size()) {
    size_t comma = fields.find(',', start);
    std::string_view field =
        fields.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    std::string code;
    if (field == "topic") code = "%t";
    else if (field == "partition") code = "%p";
    else if (field == "offset") code = "%o";
    else if (field == "key") code = "%k";
    else if (field == "timestamp") code = "%T";
    else if (field == "headers") code = "%h";
    else if (field == "value") {
      code = "%s";
      value = true;
    } else {
      return make_error(ArgErrc::kInvalid,
                        "--print: unknown field '" + std::string(field) +
                            "' (known: topic, partition, offset, key, timestamp, headers, value)");
    }
    format += (format.empty() ? "" : "\t") + code;
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  if (!value) format += "\t%s";
  return format + "\n";
}

KeyAndValue split_key_value(std::string_view line, std::string_view separator) {
  if (separator.empty()) return {std::nullopt, std::string(line)};
  auto at = line.find(separator);
  if (at == std::string_view::npos) return {std::nullopt, std::string(line)};
  return {std::string(line.substr(0, at)), std::string(line.substr(at + separator.size()))};
}

ArgResult<std::pair<std::string, std::string>> parse_assignment(std::string_view text) {
  auto at = text.find('=');
  if (at == std::string_view::npos || at == 0) {
    return make_error(ArgErrc::kInvalid, "'" + std::string(text) + "': expected key=value");
  }
  return std::pair<std::string, std::string>{std::string(text.substr(0, at)),
                                             std::string(text.substr(at + 1))};
}

namespace {

std::string_view trim_spaces(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return text;
}

}  // namespace

ArgResult<std::vector<std::string>> parse_command_config(std::string_view text) {
  struct Property {
    std::string key, value;
    int line;
  };
  std::vector<Property> properties;
  int line_number = 0;
  while (!text.empty()) {
    ++line_number;
    auto end = text.find('\n');
    std::string_view line = trim_spaces(text.substr(0, end));
    text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
    if (line.empty() || line.front() == '#' || line.front() == '!') continue;
    auto at = line.find('=');
    if (at == std::string_view::npos || at == 0) {
      return make_error(ArgErrc::kInvalid,
                        "line " + std::to_string(line_number) + ": expected key=value");
    }
    properties.push_back({std::string(trim_spaces(line.substr(0, at))),
                          std::string(trim_spaces(line.substr(at + 1))), line_number});
  }
  // Kafka's store types decide how their locations translate (any line order).
  std::string truststore_type = "PEM", keystore_type = "PEM";
  for (const auto& p : properties) {
    if (p.key == "ssl.truststore.type") truststore_type = p.value;
    if (p.key == "ssl.keystore.type") keystore_type = p.value;
  }
  auto store_error = [](const Property& p, const std::string& type) {
    return make_error(ArgErrc::kInvalid,
                      "line " + std::to_string(p.line) + ": " + p.key + " of type " + type +
                          ": librdkafka reads PEM files (set the store's type to PEM" +
                          (p.key == "ssl.keystore.location" ? ", or PKCS12" : "") + ")");
  };

  std::vector<std::string> out;
  for (const auto& p : properties) {
    const std::string& key = p.key;
    const std::string& value = p.value;
    if (key == "sasl.mechanism") {
      out.push_back("sasl.mechanisms=" + value);
    } else if (key == "sasl.jaas.config") {
      auto user = net::jaas_value(value, "username");
      auto password = net::jaas_value(value, "password");
      if (!user || !password) {
        return make_error(ArgErrc::kInvalid,
                          "line " + std::to_string(p.line) +
                              ": sasl.jaas.config needs username=\"...\" and password=\"...\" "
                              "(PLAIN or SCRAM login module)");
      }
      out.push_back("sasl.username=" + *user);
      out.push_back("sasl.password=" + *password);
    } else if (key == "ssl.truststore.type" || key == "ssl.keystore.type" ||
               key == "ssl.truststore.password") {
      // Used above; a PEM truststore has no password.
    } else if (key == "ssl.truststore.location") {
      if (truststore_type != "PEM") return store_error(p, truststore_type);
      out.push_back("ssl.ca.location=" + value);
    } else if (key == "ssl.truststore.certificates") {
      out.push_back("ssl.ca.pem=" + value);
    } else if (key == "ssl.keystore.location") {
      if (keystore_type == "PKCS12") {
        out.push_back("ssl.keystore.location=" + value);
      } else if (keystore_type == "PEM") {
        // One PEM file with the private key and the certificate chain.
        out.push_back("ssl.certificate.location=" + value);
        out.push_back("ssl.key.location=" + value);
      } else {
        return store_error(p, keystore_type);
      }
    } else if (key == "ssl.keystore.password") {
      if (keystore_type == "PKCS12") out.push_back(key + "=" + value);
    } else if (key == "ssl.keystore.certificate.chain") {
      out.push_back("ssl.certificate.pem=" + value);
    } else if (key == "ssl.keystore.key") {
      out.push_back("ssl.key.pem=" + value);
    } else if (key == "ssl.endpoint.identification.algorithm" && value.empty()) {
      out.push_back(key + "=none");  // Kafka's "" turns host name checks off
    } else {
      out.push_back(key + "=" + value);
    }
  }
  return out;
}

ArgResult<std::string> parse_acks(std::string_view acks) {
  if (acks == "0" || acks == "1" || acks == "all") return std::string(acks);
  if (acks == "-1") return std::string("all");
  return make_error(ArgErrc::kInvalid, "--acks '" + std::string(acks) + "': expected 0, 1 or all");
}

ArgResult<std::string> parse_compression(std::string_view codec) {
  for (std::string_view known : {"none", "gzip", "snappy", "lz4", "zstd"}) {
    if (codec == known) return std::string(codec);
  }
  return make_error(ArgErrc::kInvalid, "--compression '" + std::string(codec) +
                                           "': expected none, gzip, snappy, lz4 or zstd");
}

}  // namespace holdfast::cli
