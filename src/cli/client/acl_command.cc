// `holdfast acl add|remove|list`: ACLs through librdkafka's Admin API
// (CreateAcls, DeleteAcls, DescribeAcls), with kafka-acls' option names:
//
//   holdfast acl add --allow-principal User:alice --operation Read --operation Describe \
//       --topic orders [--resource-pattern-type prefixed] [--allow-host 10.0.0.1]
//   holdfast acl remove --deny-principal User:bob --operation Write --topic orders
//   holdfast acl list [--topic orders] [--principal User:alice] [--format json]
//
// `add` creates one binding per principal x operation x resource; `remove`
// deletes the bindings its options match (an option not given matches
// anything, as in kafka-acls); `list` prints the bindings a filter matches
// (--resource-pattern-type match lists every binding that applies to the
// named resource: its literal name, "*" and the prefixes of it).
#include <cctype>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/client/client.h"
#include "cli/commands.h"

namespace holdfast::cli {
namespace {

using json = nlohmann::ordered_json;

struct AclOptions {
  ClientOptions client;
  std::string format = "text";
  std::vector<std::string> allow_principals;
  std::vector<std::string> deny_principals;
  std::vector<std::string> allow_hosts;
  std::vector<std::string> deny_hosts;
  std::vector<std::string> operations;
  std::vector<std::string> topics;
  std::vector<std::string> groups;
  std::vector<std::string> transactional_ids;
  bool cluster = false;
  std::string pattern_type;  // literal (default for add), prefixed, any, match
  std::string principal;     // list: filter
};

struct BindingDeleter {
  void operator()(rd_kafka_AclBinding_t* b) const { rd_kafka_AclBinding_destroy(b); }
};
using BindingPtr = std::unique_ptr<rd_kafka_AclBinding_t, BindingDeleter>;

// Kafka's codes (rd_kafka_AclOperation_t and friends use the protocol's values).
const std::vector<std::pair<std::string, int>> kOperations = {
    {"Any", 1},          {"All", 2},           {"Read", 3},
    {"Write", 4},        {"Create", 5},        {"Delete", 6},
    {"Alter", 7},        {"Describe", 8},      {"ClusterAction", 9},
    {"DescribeConfigs", 10}, {"AlterConfigs", 11}, {"IdempotentWrite", 12}};

std::string fold(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c != '_' && c != '-') out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  }
  return out;
}

int operation_code(const std::string& name) {
  for (const auto& [n, code] : kOperations) {
    if (fold(n) == fold(name)) return code;
  }
  fail("unknown operation '" + name + "' (Read, Write, Create, Delete, Alter, Describe, "
       "ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite, All)", kExitUsage);
}

std::string operation_name(int code) {
  for (const auto& [n, c] : kOperations) {
    if (c == code) return n;
  }
  return std::to_string(code);
}

std::string resource_type_name(int code) {
  switch (code) {
    case 2: return "Topic";
    case 3: return "Group";
    case 4: return "Cluster";
    case 5: return "TransactionalId";
    default: return std::to_string(code);
  }
}

std::string pattern_name(int code) {
  switch (code) {
    case 3: return "Literal";
    case 4: return "Prefixed";
    default: return std::to_string(code);
  }
}

int pattern_code(const std::string& name, int when_empty) {
  if (name.empty()) return when_empty;
  const std::string f = fold(name);
  if (f == "literal") return RD_KAFKA_RESOURCE_PATTERN_LITERAL;
  if (f == "prefixed") return RD_KAFKA_RESOURCE_PATTERN_PREFIXED;
  if (f == "any") return RD_KAFKA_RESOURCE_PATTERN_ANY;
  if (f == "match") return RD_KAFKA_RESOURCE_PATTERN_MATCH;
  fail("unknown --resource-pattern-type '" + name + "' (literal, prefixed, any, match)", kExitUsage);
}

// The resources the options name, as (type code, name).
std::vector<std::pair<int, std::string>> resources(const AclOptions& o) {
  std::vector<std::pair<int, std::string>> out;
  for (const auto& t : o.topics) out.emplace_back(RD_KAFKA_RESOURCE_TOPIC, t);
  for (const auto& g : o.groups) out.emplace_back(RD_KAFKA_RESOURCE_GROUP, g);
  for (const auto& t : o.transactional_ids) out.emplace_back(5, t);
  if (o.cluster) out.emplace_back(RD_KAFKA_RESOURCE_BROKER, "kafka-cluster");
  return out;
}

// (principal, host, permission) triples the options name.
std::vector<std::tuple<std::string, std::string, int>> entries(const AclOptions& o) {
  std::vector<std::tuple<std::string, std::string, int>> out;
  auto hosts = [](const std::vector<std::string>& given) {
    return given.empty() ? std::vector<std::string>{"*"} : given;
  };
  for (const auto& p : o.allow_principals) {
    for (const auto& h : hosts(o.allow_hosts)) out.emplace_back(p, h, RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW);
  }
  for (const auto& p : o.deny_principals) {
    for (const auto& h : hosts(o.deny_hosts)) out.emplace_back(p, h, RD_KAFKA_ACL_PERMISSION_TYPE_DENY);
  }
  return out;
}

json binding_json(const rd_kafka_AclBinding_t* b) {
  return json{{"resource_type", resource_type_name(rd_kafka_AclBinding_restype(b))},
              {"resource_name", rd_kafka_AclBinding_name(b)},
              {"pattern_type", pattern_name(rd_kafka_AclBinding_resource_pattern_type(b))},
              {"principal", rd_kafka_AclBinding_principal(b)},
              {"host", rd_kafka_AclBinding_host(b)},
              {"operation", operation_name(rd_kafka_AclBinding_operation(b))},
              {"permission", rd_kafka_AclBinding_permission_type(b) == RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW
                                 ? "Allow" : "Deny"}};
}

void print_bindings(const std::vector<json>& bindings, const std::string& format) {
  if (format == "json") {
    std::cout << json(bindings).dump() << "\n";
    return;
  }
  std::vector<std::vector<std::string>> rows = {
      {"RESOURCE-TYPE", "NAME", "PATTERN", "PRINCIPAL", "HOST", "OPERATION", "PERMISSION"}};
  for (const auto& b : bindings) {
    rows.push_back({b["resource_type"], b["resource_name"], b["pattern_type"], b["principal"],
                    b["host"], b["operation"], b["permission"]});
  }
  print_table(rows);
}

EventPtr wait(rd_kafka_queue_t* queue, const AclOptions& o, const std::string& what) {
  return wait_admin_result(queue, o.client.timeout_ms, what);
}

void run_add(const AclOptions& o) {
  const auto res = resources(o);
  const auto ents = entries(o);
  if (res.empty()) fail("name a resource: --topic, --group, --transactional-id or --cluster", kExitUsage);
  if (ents.empty()) fail("name a principal: --allow-principal or --deny-principal", kExitUsage);
  if (o.operations.empty()) fail("name an operation: --operation", kExitUsage);
  const int pattern = pattern_code(o.pattern_type, RD_KAFKA_RESOURCE_PATTERN_LITERAL);
  std::vector<BindingPtr> owned;
  std::vector<rd_kafka_AclBinding_t*> bindings;
  char errstr[512];
  for (const auto& [type, name] : res) {
    for (const auto& [principal, host, permission] : ents) {
      for (const auto& op : o.operations) {
        auto* b = rd_kafka_AclBinding_new(
            static_cast<rd_kafka_ResourceType_t>(type), name.c_str(),
            static_cast<rd_kafka_ResourcePatternType_t>(pattern), principal.c_str(), host.c_str(),
            static_cast<rd_kafka_AclOperation_t>(operation_code(op)),
            static_cast<rd_kafka_AclPermissionType_t>(permission), errstr, sizeof(errstr));
        if (b == nullptr) fail(std::string("invalid ACL: ") + errstr, kExitUsage);
        owned.emplace_back(b);
        bindings.push_back(b);
      }
    }
  }
  auto rk = make_admin_client(o.client);
  QueuePtr queue(rd_kafka_queue_new(rk.get()));
  auto options = make_admin_options(rk.get(), RD_KAFKA_ADMIN_OP_CREATEACLS, o.client.timeout_ms);
  rd_kafka_CreateAcls(rk.get(), bindings.data(), bindings.size(), options.get(), queue.get());
  auto event = wait(queue.get(), o, "acl add");
  size_t count = 0;
  const auto** results =
      rd_kafka_CreateAcls_result_acls(rd_kafka_event_CreateAcls_result(event.get()), &count);
  std::vector<json> created;
  std::string first_error;
  for (size_t i = 0; i < count && i < bindings.size(); ++i) {
    if (const rd_kafka_error_t* error = rd_kafka_acl_result_error(results[i])) {
      if (first_error.empty()) first_error = rd_kafka_error_string(error);
      continue;
    }
    created.push_back(binding_json(bindings[i]));
  }
  if (!first_error.empty()) fail("acl add: " + first_error);
  if (o.format == "json") {
    print_bindings(created, o.format);
  } else {
    std::cout << "Added " << created.size() << " ACL" << (created.size() == 1 ? "" : "s") << ":\n";
    print_bindings(created, o.format);
  }
}

// The filters `remove` / `list` use: one per named resource (or one for any
// resource), per named principal (or any), per operation (or any).
std::vector<BindingPtr> filters(const AclOptions& o, int default_pattern) {
  auto res = resources(o);
  std::vector<std::optional<std::pair<int, std::string>>> rs;
  for (auto& r : res) rs.emplace_back(r);
  if (rs.empty()) rs.emplace_back(std::nullopt);
  std::vector<std::tuple<std::optional<std::string>, std::optional<std::string>, int>> es;
  for (const auto& [p, h, perm] : entries(o)) {
    const bool any_host = (perm == RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW ? o.allow_hosts : o.deny_hosts).empty();
    es.emplace_back(p, any_host ? std::nullopt : std::optional<std::string>(h), perm);
  }
  if (es.empty()) {
    es.emplace_back(o.principal.empty() ? std::nullopt : std::optional<std::string>(o.principal),
                    std::nullopt, RD_KAFKA_ACL_PERMISSION_TYPE_ANY);
  }
  std::vector<int> ops;
  for (const auto& op : o.operations) ops.push_back(operation_code(op));
  if (ops.empty()) ops.push_back(RD_KAFKA_ACL_OPERATION_ANY);
  const int pattern = pattern_code(o.pattern_type, default_pattern);
  std::vector<BindingPtr> out;
  char errstr[512];
  for (const auto& r : rs) {
    for (const auto& [p, h, perm] : es) {
      for (int op : ops) {
        auto* f = rd_kafka_AclBindingFilter_new(
            static_cast<rd_kafka_ResourceType_t>(r ? r->first : RD_KAFKA_RESOURCE_ANY),
            r ? r->second.c_str() : nullptr, static_cast<rd_kafka_ResourcePatternType_t>(pattern),
            p ? p->c_str() : nullptr, h ? h->c_str() : nullptr,
            static_cast<rd_kafka_AclOperation_t>(op), static_cast<rd_kafka_AclPermissionType_t>(perm),
            errstr, sizeof(errstr));
        if (f == nullptr) fail(std::string("invalid filter: ") + errstr, kExitUsage);
        out.emplace_back(f);
      }
    }
  }
  return out;
}

void run_list(const AclOptions& o) {
  auto rk = make_admin_client(o.client);
  std::vector<json> found;
  for (auto& f : filters(o, RD_KAFKA_RESOURCE_PATTERN_ANY)) {
    QueuePtr queue(rd_kafka_queue_new(rk.get()));
    auto options = make_admin_options(rk.get(), RD_KAFKA_ADMIN_OP_DESCRIBEACLS, o.client.timeout_ms);
    rd_kafka_DescribeAcls(rk.get(), f.get(), options.get(), queue.get());
    auto event = wait(queue.get(), o, "acl list");
    size_t count = 0;
    const auto** acls =
        rd_kafka_DescribeAcls_result_acls(rd_kafka_event_DescribeAcls_result(event.get()), &count);
    for (size_t i = 0; i < count; ++i) found.push_back(binding_json(acls[i]));
  }
  print_bindings(found, o.format);
}

void run_remove(const AclOptions& o) {
  if (resources(o).empty() && entries(o).empty()) {
    fail("name what to remove: a resource (--topic, --group, --transactional-id, --cluster) "
         "and/or a principal (--allow-principal, --deny-principal)", kExitUsage);
  }
  auto owned = filters(o, RD_KAFKA_RESOURCE_PATTERN_LITERAL);
  std::vector<rd_kafka_AclBindingFilter_t*> raw;
  for (auto& f : owned) raw.push_back(f.get());
  auto rk = make_admin_client(o.client);
  QueuePtr queue(rd_kafka_queue_new(rk.get()));
  auto options = make_admin_options(rk.get(), RD_KAFKA_ADMIN_OP_DELETEACLS, o.client.timeout_ms);
  rd_kafka_DeleteAcls(rk.get(), raw.data(), raw.size(), options.get(), queue.get());
  auto event = wait(queue.get(), o, "acl remove");
  size_t count = 0;
  const auto** responses =
      rd_kafka_DeleteAcls_result_responses(rd_kafka_event_DeleteAcls_result(event.get()), &count);
  std::vector<json> removed;
  for (size_t i = 0; i < count; ++i) {
    if (const rd_kafka_error_t* error = rd_kafka_DeleteAcls_result_response_error(responses[i])) {
      fail(std::string("acl remove: ") + rd_kafka_error_string(error));
    }
    size_t matching = 0;
    const auto** acls = rd_kafka_DeleteAcls_result_response_matching_acls(responses[i], &matching);
    for (size_t j = 0; j < matching; ++j) removed.push_back(binding_json(acls[j]));
  }
  if (o.format == "json") {
    print_bindings(removed, o.format);
  } else {
    std::cout << "Removed " << removed.size() << " ACL" << (removed.size() == 1 ? "" : "s") << ":\n";
    print_bindings(removed, o.format);
  }
}

void add_binding_options(CLI::App* command, AclOptions& o, bool filter) {
  add_client_options(command, o.client);
  command->add_option("--allow-principal", o.allow_principals, "Principal to allow (User:alice, User:*)");
  command->add_option("--deny-principal", o.deny_principals, "Principal to deny");
  command->add_option("--allow-host", o.allow_hosts, "Host the allow applies to (default *)");
  command->add_option("--deny-host", o.deny_hosts, "Host the deny applies to (default *)");
  command->add_option("--operation", o.operations,
                      "Read, Write, Create, Delete, Alter, Describe, ClusterAction, DescribeConfigs, "
                      "AlterConfigs, IdempotentWrite, All");
  command->add_option("--topic", o.topics, "Topic (or prefix, or * for all)");
  command->add_option("--group", o.groups, "Consumer group");
  command->add_option("--transactional-id", o.transactional_ids, "Transactional id");
  command->add_flag("--cluster", o.cluster, "The cluster resource");
  command->add_option("--resource-pattern-type", o.pattern_type,
                      filter ? "literal (default), prefixed, any, match" : "literal (default) or prefixed");
  command->add_option("--format", o.format, "Output format")->check(CLI::IsMember({"text", "json"}));
}

}  // namespace

void add_acl_command(CLI::App& app) {
  auto* acl = app.add_subcommand("acl", "Manage ACLs (Kafka's model: kafka-acls' options)");
  acl->require_subcommand(1);

  auto add_opts = std::make_shared<AclOptions>();
  auto* add = acl->add_subcommand("add", "Create ACL bindings");
  add_binding_options(add, *add_opts, false);
  add->callback([add_opts] { run_add(*add_opts); });

  auto remove_opts = std::make_shared<AclOptions>();
  auto* remove = acl->add_subcommand("remove", "Delete the ACL bindings the options match");
  add_binding_options(remove, *remove_opts, true);
  remove->callback([remove_opts] { run_remove(*remove_opts); });

  auto list_opts = std::make_shared<AclOptions>();
  auto* list = acl->add_subcommand("list", "List ACL bindings");
  add_binding_options(list, *list_opts, true);
  list->add_option("--principal", list_opts->principal, "Only this principal's bindings");
  list->callback([list_opts] { run_list(*list_opts); });
}

}  // namespace holdfast::cli
