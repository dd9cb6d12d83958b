#include "io/file_system.h"

namespace holdfast::io {

const char* to_string(Errc code) {
  switch (code) {
    case Errc::not_found:
      return "not_found";
    case Errc::already_exists:
      return "already_exists";
    case Errc::no_space:
      return "no_space";
    case Errc::permission_denied:
      return "permission_denied";
    case Errc::io_error:
      return "io_error";
  }
  return "unknown";
}

std::string parent_dir(std::string_view path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string_view::npos) return ".";
  if (slash == 0) return "/";
  return std::string(path.substr(0, slash));
}

std::string join_path(std::string_view dir, std::string_view name) {
  std::string out(dir);
  if (!out.empty() && out.back() != '/') out.push_back('/');
  out.append(name);
  return out;
}

IoResult<void> create_dirs(FileSystem& fs, const std::string& path) {
  if (fs.is_directory(path)) return {};
  std::string parent = parent_dir(path);
  if (parent != path && parent != "." && parent != "/") {
    if (auto r = create_dirs(fs, parent); !r) return r;
  }
  if (auto r = fs.create_dir(path); !r && r.code() != Errc::already_exists) return r;
  return fs.sync_dir(parent);
}

IoResult<std::vector<uint8_t>> read_file(FileSystem& fs, const std::string& path) {
  auto file = fs.open(path, OpenMode::open_existing);
  if (!file) return file.error();
  std::vector<uint8_t> data((*file)->size());
  auto n = (*file)->read_at(0, data);
  if (!n) return n.error();
  data.resize(*n);
  return data;
}

IoResult<void> write_file_atomically(FileSystem& fs, const std::string& path,
                                     std::span<const uint8_t> contents) {
  std::string tmp = path + ".tmp";
  if (fs.exists(tmp)) {
    if (auto r = fs.remove(tmp); !r) return r;
  }
  {
    auto file = fs.open(tmp, OpenMode::create_new);
    if (!file) return file.error();
    if (auto r = (*file)->append(contents); !r) return r;
    if (auto r = (*file)->sync(); !r) return r;
  }
  if (auto r = fs.rename(tmp, path); !r) return r;
  return fs.sync_dir(parent_dir(path));
}

IoResult<void> remove_all(FileSystem& fs, const std::string& path) {
  if (!fs.is_directory(path)) {
    auto r = fs.remove(path);
    if (!r && r.code() != Errc::not_found) return r;
    return {};
  }
  auto names = fs.list_dir(path);
  if (!names) return names.error();
  for (const auto& name : *names) {
    if (auto r = remove_all(fs, join_path(path, name)); !r) return r;
  }
  return fs.remove_dir(path);
}

}  // namespace holdfast::io
