// The web console's static files (console/ in the repo), embedded into the
// binary at build time by embed_files.cmake and served by the admin listener.
#pragma once

#include <span>
#include <string_view>

namespace holdfast::admin {

struct ConsoleAsset {
  std::string_view path;          // relative to console/, e.g. "index.html"
  std::string_view content_type;  // e.g. "text/css; charset=utf-8"
  std::string_view data;
};

std::span<const ConsoleAsset> console_assets();

}  // namespace holdfast::admin
