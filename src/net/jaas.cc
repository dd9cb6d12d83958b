#include "net/jaas.h"

#include <cctype>

namespace holdfast::net {
namespace {

std::string_view trim_spaces(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return text;
}

}  // namespace

std::optional<std::string> jaas_value(std::string_view jaas, std::string_view name) {
  for (size_t at = jaas.find(name); at != std::string_view::npos; at = jaas.find(name, at + 1)) {
    const bool starts_word = at == 0 || std::isspace(static_cast<unsigned char>(jaas[at - 1]));
    std::string_view rest = trim_spaces(jaas.substr(at + name.size()));
    if (!starts_word || rest.empty() || rest.front() != '=') continue;
    rest = trim_spaces(rest.substr(1));
    if (rest.empty() || rest.front() != '"') return std::nullopt;
    auto close = rest.find('"', 1);
    if (close == std::string_view::npos) return std::nullopt;
    return std::string(rest.substr(1, close - 1));
  }
  return std::nullopt;
}

std::optional<JaasCredentials> jaas_credentials(std::string_view jaas) {
  auto user = jaas_value(jaas, "username");
  auto password = jaas_value(jaas, "password");
  if (!user || !password || user->empty()) return std::nullopt;
  return JaasCredentials{std::move(*user), std::move(*password)};
}

}  // namespace holdfast::net
