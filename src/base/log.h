// Logging: spdlog, one process-wide logger. Use the macros so call sites stay
// short: HF_INFO("listening on {}", endpoint).
#pragma once

#include <spdlog/spdlog.h>

#define HF_TRACE(...) SPDLOG_TRACE(__VA_ARGS__)
#define HF_DEBUG(...) SPDLOG_DEBUG(__VA_ARGS__)
#define HF_INFO(...) SPDLOG_INFO(__VA_ARGS__)
#define HF_WARN(...) SPDLOG_WARN(__VA_ARGS__)
#define HF_ERROR(...) SPDLOG_ERROR(__VA_ARGS__)

namespace holdfast {
// Sets the global level from a name (trace, debug, info, warn, error, off).
// Returns false for an unknown name.
bool set_log_level(const std::string& level);
}  // namespace holdfast
