// `holdfast group list|describe|seek|delete`, through librdkafka's Admin API
// (ListConsumerGroups, DescribeConsumerGroups, ListConsumerGroupOffsets,
// AlterConsumerGroupOffsets, DeleteGroups) and ListOffsets (watermarks and
// offsets by timestamp).
#include <algorithm>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "cli/client/args.h"
#include "cli/client/client.h"
#include "cli/client/group_offsets.h"
#include "cli/commands.h"

namespace holdfast::cli {
namespace {

using json = nlohmann::ordered_json;

struct GroupOptions {
  ClientOptions client;
  std::string format = "text";
  std::string group;                // describe, seek
  std::vector<std::string> groups;  // delete
  std::string to;                   // seek
  std::vector<std::string> topics;  // seek
  bool dry_run = false;             // seek
};


using TopicPartition = std::pair<std::string, int32_t>;

// `message` for a failure with `err`, plus a hint at the usual cause when
// the request timed out (librdkafka only says "Local: Timed out").
std::string explain(std::string message, rd_kafka_resp_err_t err, const ClientOptions& client) {
  if (err == RD_KAFKA_RESP_ERR__TIMED_OUT || err == RD_KAFKA_RESP_ERR__TRANSPORT) {
    message += " (no answer within " + std::to_string(client.timeout_ms) +
               " ms; are the brokers at " + client.brokers + " reachable?)";
  }
  return message;
}

std::string explain(const std::string& what, const rd_kafka_error_t* error,
                    const ClientOptions& client) {
  return explain(what + ": " + rd_kafka_error_string(error), rd_kafka_error_code(error), client);
}

// As wait_admin_result (client.h), with explain()'s hint.
EventPtr wait_result(rd_kafka_queue_t* queue, const ClientOptions& client,
                     const std::string& what) {
  EventPtr event(rd_kafka_queue_poll(queue, client.timeout_ms + 2000));
  if (!event) fail(what + ": no answer within " + std::to_string(client.timeout_ms) + " ms");
  rd_kafka_resp_err_t err = rd_kafka_event_error(event.get());
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    fail(explain(what + ": " + rd_kafka_event_error_string(event.get()), err, client));
  }
  return event;
}

std::string or_dash(const std::string& text) {
  return text.empty() ? "-" : text;
}
// JSON's counterpart of or_dash: null where the text shows '-'.
json or_null(const std::string& text) {
  return text.empty() ? json(nullptr) : json(text);
}
std::string str(const char* text) {
  return text ? text : "";
}

// "Stable", "Empty", ... as Kafka names them (librdkafka's names are the same).
std::string state_name(rd_kafka_consumer_group_state_t state) {
  return rd_kafka_consumer_group_state_name(state);
}

// ---- describing a group -----------------------------------------------------------------------

struct Member {
  std::string member_id;
  std::string instance_id;
  std::string client_id;
  std::string host;
  std::vector<TopicPartition> assignment;  // sorted
};

struct Coordinator {
  int id = -1;
  std::string host;
  int port = 0;
};

struct GroupDescription {
  std::string group;
  rd_kafka_consumer_group_state_t state = RD_KAFKA_CONSUMER_GROUP_STATE_UNKNOWN;
  std::string assignor;  // the protocol the group chose: range, roundrobin, ...
  bool simple = false;   // empty protocol type: a group used only to store offsets
  std::optional<Coordinator> coordinator;
  std::vector<Member> members;

  // Kafka answers DescribeGroups for an unknown group with state Dead.
  bool exists() const { return state != RD_KAFKA_CONSUMER_GROUP_STATE_DEAD; }
};

// DescribeConsumerGroups for one group. `what` prefixes error messages.
GroupDescription describe_group(rd_kafka_t* rk, const std::string& group,
                                const ClientOptions& client, const std::string& what) {
  QueuePtr queue(rd_kafka_queue_new(rk));
  auto options =
      make_admin_options(rk, RD_KAFKA_ADMIN_OP_DESCRIBECONSUMERGROUPS, client.timeout_ms);
  const char* names[] = {group.c_str()};
  rd_kafka_DescribeConsumerGroups(rk, names, 1, options.get(), queue.get());
  auto event = wait_result(queue.get(), client, what);
  size_t count = 0;
  const rd_kafka_ConsumerGroupDescription_t** groups =
      rd_kafka_DescribeConsumerGroups_result_groups(
          rd_kafka_event_DescribeConsumerGroups_result(event.get()), &count);
  if (count != 1) fail(what + ": the broker described " + std::to_string(count) + " groups, not 1");
  const auto* g = groups[0];
  if (const rd_kafka_error_t* error = rd_kafka_ConsumerGroupDescription_error(g)) {
    fail(explain(what, error, client));
  }
  GroupDescription d;
  d.group = group;
  d.state = rd_kafka_ConsumerGroupDescription_state(g);
  d.assignor = str(rd_kafka_ConsumerGroupDescription_partition_assignor(g));
  d.simple = rd_kafka_ConsumerGroupDescription_is_simple_consumer_group(g) != 0;
  if (const rd_kafka_Node_t* node = rd_kafka_ConsumerGroupDescription_coordinator(g)) {
    d.coordinator = Coordinator{rd_kafka_Node_id(node), str(rd_kafka_Node_host(node)),
                                rd_kafka_Node_port(node)};
  }
  for (size_t i = 0; i < rd_kafka_ConsumerGroupDescription_member_count(g); ++i) {
    const rd_kafka_MemberDescription_t* m = rd_kafka_ConsumerGroupDescription_member(g, i);
    Member member{str(rd_kafka_MemberDescription_consumer_id(m)),
                  str(rd_kafka_MemberDescription_group_instance_id(m)),
                  str(rd_kafka_MemberDescription_client_id(m)),
                  str(rd_kafka_MemberDescription_host(m)),
                  {}};
    if (const rd_kafka_MemberAssignment_t* a = rd_kafka_MemberDescription_assignment(m)) {
      if (const rd_kafka_topic_partition_list_t* parts = rd_kafka_MemberAssignment_partitions(a)) {
        for (int p = 0; p < parts->cnt; ++p) {
          member.assignment.emplace_back(parts->elems[p].topic, parts->elems[p].partition);
        }
      }
    }
    std::sort(member.assignment.begin(), member.assignment.end());
    d.members.push_back(std::move(member));
  }
  std::sort(d.members.begin(), d.members.end(),
            [](const Member& a, const Member& b) { return a.member_id < b.member_id; });
  return d;
}

// The group's committed offsets (OffsetFetch for all partitions): only the
// partitions that have a commit.
std::map<TopicPartition, int64_t> committed_offsets(rd_kafka_t* rk, const std::string& group,
                                                    const ClientOptions& client,
                                                    const std::string& what) {
  QueuePtr queue(rd_kafka_queue_new(rk));
  auto options =
      make_admin_options(rk, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS, client.timeout_ms);
  rd_kafka_ListConsumerGroupOffsets_t* request =
      rd_kafka_ListConsumerGroupOffsets_new(group.c_str(), nullptr);  // nullptr: all partitions
  rd_kafka_ListConsumerGroupOffsets(rk, &request, 1, options.get(), queue.get());
  rd_kafka_ListConsumerGroupOffsets_destroy(request);
  auto event = wait_result(queue.get(), client, what + ": OffsetFetch");
  size_t count = 0;
  const rd_kafka_group_result_t** results = rd_kafka_ListConsumerGroupOffsets_result_groups(
      rd_kafka_event_ListConsumerGroupOffsets_result(event.get()), &count);
  std::map<TopicPartition, int64_t> offsets;
  for (size_t i = 0; i < count; ++i) {
    if (const rd_kafka_error_t* error = rd_kafka_group_result_error(results[i])) {
      fail(explain(what + ": OffsetFetch", error, client));
    }
    const rd_kafka_topic_partition_list_t* parts = rd_kafka_group_result_partitions(results[i]);
    for (int p = 0; parts && p < parts->cnt; ++p) {
      const auto& tp = parts->elems[p];
      if (tp.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fail(what + ": OffsetFetch " + tp.topic + "[" + std::to_string(tp.partition) +
             "]: " + rd_kafka_err2str(tp.err));
      }
      if (tp.offset >= 0) offsets[{tp.topic, tp.partition}] = tp.offset;
    }
  }
  return offsets;
}

struct Watermarks {
  int64_t log_start = -1;
  int64_t log_end = -1;
};

Watermarks query_watermarks(rd_kafka_t* rk, const TopicPartition& tp, int timeout_ms,
                            const std::string& what) {
  Watermarks w;
  rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(rk, tp.first.c_str(), tp.second,
                                                             &w.log_start, &w.log_end, timeout_ms);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    fail(what + ": cannot list offsets of " + tp.first + "[" + std::to_string(tp.second) +
         "]: " + rd_kafka_err2str(err));
  }
  return w;
}

// One row of `describe`: a partition that is assigned to a member, or has a
// committed offset, or both.
struct PartitionRow {
  TopicPartition tp;
  int64_t committed = -1;  // -1: nothing committed
  Watermarks watermarks;
  std::optional<int64_t> lag;
  const Member* member = nullptr;  // the member it is assigned to, if any
};

json coordinator_json(const GroupDescription& d) {
  if (!d.coordinator) return nullptr;
  return json{
      {"id", d.coordinator->id}, {"host", d.coordinator->host}, {"port", d.coordinator->port}};
}

std::string coordinator_text(const GroupDescription& d) {
  if (!d.coordinator) return "-";
  return std::to_string(d.coordinator->id) + " (" + d.coordinator->host + ":" +
         std::to_string(d.coordinator->port) + ")";
}

std::string assignment_text(const std::vector<TopicPartition>& assignment) {
  // topic:0,1,2 other:3
  std::string out;
  for (size_t i = 0; i < assignment.size(); ++i) {
    bool same_topic = i > 0 && assignment[i - 1].first == assignment[i].first;
    if (same_topic) {
      out += ",";
    } else {
      if (i > 0) out += " ";
      out += assignment[i].first + ":";
    }
    out += std::to_string(assignment[i].second);
  }
  return out.empty() ? "-" : out;
}

void run_describe(const GroupOptions& opts) {
  const std::string what = "group describe '" + opts.group + "'";
  auto rk = make_admin_client(opts.client);
  GroupDescription d = describe_group(rk.get(), opts.group, opts.client, what);
  auto committed = committed_offsets(rk.get(), opts.group, opts.client, what);
  if (!d.exists() && committed.empty()) fail("group '" + opts.group + "' does not exist");

  std::map<TopicPartition, PartitionRow> rows;
  for (const auto& [tp, offset] : committed) rows[tp].committed = offset;
  for (const auto& member : d.members) {
    for (const auto& tp : member.assignment) rows[tp].member = &member;
  }
  int64_t total_lag = 0;
  for (auto& [tp, row] : rows) {
    row.tp = tp;
    row.watermarks = query_watermarks(rk.get(), tp, opts.client.timeout_ms, what);
    row.lag = partition_lag(row.committed, row.watermarks.log_start, row.watermarks.log_end);
    total_lag += row.lag.value_or(0);
  }

  if (opts.format == "json") {
    json out{{"group", d.group},
             {"coordinator", coordinator_json(d)},
             {"state", state_name(d.state)},
             {"protocol_type", d.simple ? json(nullptr) : json("consumer")},
             {"balancer", or_null(d.assignor)},
             {"members", d.members.size()},
             {"total_lag", total_lag},
             {"member_details", json::array()},
             {"partitions", json::array()}};
    for (const auto& m : d.members) {
      json assignment = json::array();
      for (const auto& [topic, partition] : m.assignment) {
        assignment.push_back({{"topic", topic}, {"partition", partition}});
      }
      out["member_details"].push_back(
          {{"member_id", m.member_id},
           {"instance_id", m.instance_id.empty() ? json(nullptr) : json(m.instance_id)},
           {"client_id", or_null(m.client_id)},
           {"host", or_null(m.host)},
           {"assignment", assignment}});
    }
    for (const auto& [tp, row] : rows) {
      out["partitions"].push_back(
          {{"topic", tp.first},
           {"partition", tp.second},
           {"current_offset", row.committed >= 0 ? json(row.committed) : json(nullptr)},
           {"log_start_offset", row.watermarks.log_start},
           {"log_end_offset", row.watermarks.log_end},
           {"lag", row.lag ? json(*row.lag) : json(nullptr)},
           {"member_id", row.member ? json(row.member->member_id) : json(nullptr)},
           {"host", row.member ? or_null(row.member->host) : json(nullptr)},
           {"client_id", row.member ? or_null(row.member->client_id) : json(nullptr)}});
    }
    std::cout << out.dump() << '\n';
    return;
  }

  print_table({{"GROUP", d.group},
               {"COORDINATOR", coordinator_text(d)},
               {"STATE", state_name(d.state)},
               {"PROTOCOL-TYPE", d.simple ? "-" : "consumer"},
               {"BALANCER", or_dash(d.assignor)},
               {"MEMBERS", std::to_string(d.members.size())},
               {"TOTAL-LAG", std::to_string(total_lag)}});
  if (!d.members.empty()) {
    std::cout << '\n';
    std::vector<std::vector<std::string>> table{
        {"MEMBER-ID", "INSTANCE-ID", "CLIENT-ID", "HOST", "ASSIGNMENTS"}};
    for (const auto& m : d.members) {
      table.push_back({m.member_id, or_dash(m.instance_id), or_dash(m.client_id), or_dash(m.host),
                       assignment_text(m.assignment)});
    }
    print_table(table);
  }
  if (!rows.empty()) {
    std::cout << '\n';
    std::vector<std::vector<std::string>> table{{"TOPIC", "PARTITION", "CURRENT-OFFSET",
                                                 "LOG-END-OFFSET", "LAG", "CONSUMER-ID", "HOST",
                                                 "CLIENT-ID"}};
    for (const auto& [tp, row] : rows) {
      table.push_back(
          {tp.first, std::to_string(tp.second),
           row.committed >= 0 ? std::to_string(row.committed) : "-",
           std::to_string(row.watermarks.log_end), row.lag ? std::to_string(*row.lag) : "-",
           row.member ? row.member->member_id : "-", row.member ? or_dash(row.member->host) : "-",
           row.member ? or_dash(row.member->client_id) : "-"});
    }
    print_table(table);
  }
}

// ---- list -------------------------------------------------------------------------------------

void run_list(const GroupOptions& opts) {
  auto rk = make_admin_client(opts.client);
  QueuePtr queue(rd_kafka_queue_new(rk.get()));
  auto options =
      make_admin_options(rk.get(), RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPS, opts.client.timeout_ms);
  rd_kafka_ListConsumerGroups(rk.get(), options.get(), queue.get());
  auto event = wait_result(queue.get(), opts.client, "group list");
  const auto* result = rd_kafka_event_ListConsumerGroups_result(event.get());
  size_t error_count = 0;
  const rd_kafka_error_t** errors = rd_kafka_ListConsumerGroups_result_errors(result, &error_count);
  if (error_count > 0) fail(explain("group list", errors[0], opts.client));
  size_t count = 0;
  const rd_kafka_ConsumerGroupListing_t** listings =
      rd_kafka_ListConsumerGroups_result_valid(result, &count);
  struct Listed {
    std::string group;
    std::string state;
    bool simple;
  };
  std::vector<Listed> groups;
  for (size_t i = 0; i < count; ++i) {
    groups.push_back({str(rd_kafka_ConsumerGroupListing_group_id(listings[i])),
                      state_name(rd_kafka_ConsumerGroupListing_state(listings[i])),
                      rd_kafka_ConsumerGroupListing_is_simple_consumer_group(listings[i]) != 0});
  }
  std::sort(groups.begin(), groups.end(),
            [](const Listed& a, const Listed& b) { return a.group < b.group; });
  if (opts.format == "json") {
    json out = json::array();
    for (const auto& g : groups) {
      out.push_back(
          {{"group", g.group}, {"state", g.state}, {"protocol_type", g.simple ? "" : "consumer"}});
    }
    std::cout << out.dump() << '\n';
    return;
  }
  std::vector<std::vector<std::string>> rows{{"GROUP", "STATE", "PROTOCOL-TYPE"}};
  for (const auto& g : groups) rows.push_back({g.group, g.state, g.simple ? "-" : "consumer"});
  print_table(rows);
}

// ---- seek -------------------------------------------------------------------------------------

// Fails unless the group has no members: committing offsets under running
// consumers would be overwritten by their next commit (and the broker
// refuses commits from outside the generation anyway).
void require_no_members(const GroupDescription& d) {
  if (!d.members.empty()) {
    fail("group '" + d.group + "' has " + std::to_string(d.members.size()) + " active member" +
         (d.members.size() == 1 ? "" : "s") + " (state " + state_name(d.state) +
         "); stop them before seeking");
  }
  if (d.state != RD_KAFKA_CONSUMER_GROUP_STATE_EMPTY &&
      d.state != RD_KAFKA_CONSUMER_GROUP_STATE_DEAD &&
      d.state != RD_KAFKA_CONSUMER_GROUP_STATE_UNKNOWN) {
    fail("group '" + d.group + "' is " + state_name(d.state) + "; stop its members before seeking");
  }
}

void run_seek(const GroupOptions& opts) {
  const std::string what = "group seek '" + opts.group + "'";
  auto target = parse_seek_target(opts.to);
  if (!target) fail("group seek: " + target.error().message, kExitUsage);
  auto rk = make_admin_client(opts.client);
  GroupDescription d = describe_group(rk.get(), opts.group, opts.client, what);
  require_no_members(d);
  auto committed = committed_offsets(rk.get(), opts.group, opts.client, what);

  std::set<std::string> topics(opts.topics.begin(), opts.topics.end());
  if (topics.empty()) {
    for (const auto& [tp, offset] : committed) topics.insert(tp.first);
    if (topics.empty()) {
      fail("group '" + opts.group +
           "' has no committed offsets; name the topics to seek with --topic");
    }
  }

  // Every partition of the topics, resolved to the offset to commit.
  struct Planned {
    TopicPartition tp;
    int64_t previous = -1;
    int64_t offset = -1;
  };
  std::vector<Planned> plan;
  for (const auto& topic : topics) {
    TopicInfo info = fetch_topic(rk.get(), topic, opts.client.timeout_ms);
    std::map<int32_t, int64_t> by_time;  // partition -> offset for the timestamp
    if (target->kind == StartPosition::Kind::kTimestamp && !info.partitions.empty()) {
      PartitionListPtr query(rd_kafka_topic_partition_list_new(info.partitions.size()));
      for (const auto& p : info.partitions) {
        rd_kafka_topic_partition_list_add(query.get(), topic.c_str(), p.id)->offset = target->value;
      }
      rd_kafka_resp_err_t err =
          rd_kafka_offsets_for_times(rk.get(), query.get(), opts.client.timeout_ms);
      if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        fail(what + ": cannot look up offsets by timestamp in '" + topic +
             "': " + rd_kafka_err2str(err));
      }
      for (int i = 0; i < query->cnt; ++i) {
        const auto& tp = query->elems[i];
        if (tp.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
          fail(what + ": cannot look up offsets by timestamp in " + topic + "[" +
               std::to_string(tp.partition) + "]: " + rd_kafka_err2str(tp.err));
        }
        by_time[tp.partition] = tp.offset;
      }
    }
    for (const auto& p : info.partitions) {
      TopicPartition tp{topic, p.id};
      Watermarks w = query_watermarks(rk.get(), tp, opts.client.timeout_ms, what);
      auto found = by_time.find(p.id);
      Planned planned{tp, -1,
                      seek_offset(*target, w.log_start, w.log_end,
                                  found == by_time.end() ? -1 : found->second)};
      if (auto it = committed.find(tp); it != committed.end()) planned.previous = it->second;
      plan.push_back(std::move(planned));
    }
  }

  if (!opts.dry_run && !plan.empty()) {
    PartitionListPtr offsets(rd_kafka_topic_partition_list_new(plan.size()));
    for (const auto& planned : plan) {
      rd_kafka_topic_partition_list_add(offsets.get(), planned.tp.first.c_str(), planned.tp.second)
          ->offset = planned.offset;
    }
    QueuePtr queue(rd_kafka_queue_new(rk.get()));
    auto options = make_admin_options(rk.get(), RD_KAFKA_ADMIN_OP_ALTERCONSUMERGROUPOFFSETS,
                                      opts.client.timeout_ms);
    rd_kafka_AlterConsumerGroupOffsets_t* request =
        rd_kafka_AlterConsumerGroupOffsets_new(opts.group.c_str(), offsets.get());
    rd_kafka_AlterConsumerGroupOffsets(rk.get(), &request, 1, options.get(), queue.get());
    rd_kafka_AlterConsumerGroupOffsets_destroy(request);
    auto event = wait_result(queue.get(), opts.client, what + ": OffsetCommit");
    size_t count = 0;
    const rd_kafka_group_result_t** results = rd_kafka_AlterConsumerGroupOffsets_result_groups(
        rd_kafka_event_AlterConsumerGroupOffsets_result(event.get()), &count);
    for (size_t i = 0; i < count; ++i) {
      if (const rd_kafka_error_t* error = rd_kafka_group_result_error(results[i])) {
        fail(explain(what + ": OffsetCommit", error, opts.client));
      }
      const rd_kafka_topic_partition_list_t* parts = rd_kafka_group_result_partitions(results[i]);
      std::vector<std::string> failures;
      for (int p = 0; parts && p < parts->cnt; ++p) {
        const auto& tp = parts->elems[p];
        if (tp.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
          failures.push_back(std::string(tp.topic) + "[" + std::to_string(tp.partition) +
                             "]: " + rd_kafka_err2str(tp.err));
        }
      }
      if (!failures.empty()) {
        std::string line = what + ": OffsetCommit failed for " + std::to_string(failures.size()) +
                           " of " + std::to_string(plan.size()) + " partitions: ";
        for (size_t f = 0; f < failures.size(); ++f) line += (f ? "; " : "") + failures[f];
        fail(line);
      }
    }
  }

  if (opts.format == "json") {
    json out{{"group", opts.group}, {"dry_run", opts.dry_run}, {"partitions", json::array()}};
    for (const auto& planned : plan) {
      out["partitions"].push_back(
          {{"topic", planned.tp.first},
           {"partition", planned.tp.second},
           {"previous_offset", planned.previous >= 0 ? json(planned.previous) : json(nullptr)},
           {"new_offset", planned.offset}});
    }
    std::cout << out.dump() << '\n';
    return;
  }
  std::vector<std::vector<std::string>> rows{
      {"TOPIC", "PARTITION", "PREVIOUS-OFFSET", "NEW-OFFSET"}};
  for (const auto& planned : plan) {
    rows.push_back({planned.tp.first, std::to_string(planned.tp.second),
                    planned.previous >= 0 ? std::to_string(planned.previous) : "-",
                    std::to_string(planned.offset)});
  }
  print_table(rows);
  std::cout << (opts.dry_run ? "dry run: nothing committed for group '"
                             : "committed new offsets for group '")
            << opts.group << "' (" << plan.size() << " partitions)\n";
}

// ---- delete -----------------------------------------------------------------------------------

void run_delete(const GroupOptions& opts) {
  auto rk = make_admin_client(opts.client);
  std::vector<rd_kafka_DeleteGroup_t*> requests;
  for (const auto& name : opts.groups) requests.push_back(rd_kafka_DeleteGroup_new(name.c_str()));
  QueuePtr queue(rd_kafka_queue_new(rk.get()));
  auto options =
      make_admin_options(rk.get(), RD_KAFKA_ADMIN_OP_DELETEGROUPS, opts.client.timeout_ms);
  rd_kafka_DeleteGroups(rk.get(), requests.data(), requests.size(), options.get(), queue.get());
  rd_kafka_DeleteGroup_destroy_array(requests.data(), requests.size());
  auto event = wait_result(queue.get(), opts.client, "group delete");
  size_t count = 0;
  const rd_kafka_group_result_t** results =
      rd_kafka_DeleteGroups_result_groups(rd_kafka_event_DeleteGroups_result(event.get()), &count);
  std::vector<std::string> failures;
  for (size_t i = 0; i < count; ++i) {
    std::string name = str(rd_kafka_group_result_name(results[i]));
    const rd_kafka_error_t* error = rd_kafka_group_result_error(results[i]);
    if (error == nullptr) {
      std::cout << "deleted group " << name << '\n';
      continue;
    }
    std::string reason = rd_kafka_error_string(error);
    switch (rd_kafka_error_code(error)) {
      case RD_KAFKA_RESP_ERR_NON_EMPTY_GROUP:
        reason = "the group has active members; stop them first (" + reason + ")";
        break;
      case RD_KAFKA_RESP_ERR_GROUP_ID_NOT_FOUND:
        reason = "no such group (" + reason + ")";
        break;
      default:
        reason = explain(reason, rd_kafka_error_code(error), opts.client);
        break;
    }
    failures.push_back("'" + name + "': " + reason);
  }
  if (!failures.empty()) {
    std::string line = "group delete: " + std::to_string(failures.size()) + " of " +
                       std::to_string(opts.groups.size()) + " failed: ";
    for (size_t i = 0; i < failures.size(); ++i) line += (i ? "; " : "") + failures[i];
    fail(line);
  }
}

void add_format_option(CLI::App* command, GroupOptions& opts) {
  command->add_option("--format", opts.format, "Output format")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
}

}  // namespace

void add_group_command(CLI::App& app) {
  auto opts = std::make_shared<GroupOptions>();
  auto* group = app.add_subcommand(
      "group", "List, describe, seek (reset offsets of) and delete consumer groups");
  group->require_subcommand(1);

  auto* list = group->add_subcommand("list", "List consumer groups with their state");
  add_format_option(list, *opts);
  add_client_options(list, opts->client);
  list->callback([opts] { run_list(*opts); });

  auto* describe = group->add_subcommand(
      "describe", "Show a group's state, members, committed offsets, log end offsets and lag");
  describe->add_option("group", opts->group, "Group id")->required();
  add_format_option(describe, *opts);
  add_client_options(describe, opts->client);
  describe->callback([opts] { run_describe(*opts); });

  auto* seek = group->add_subcommand(
      "seek", "Set a group's committed offsets (the group must have no active members)");
  seek->add_option("group", opts->group, "Group id")->required();
  seek->add_option("--to", opts->to, "start | end | <offset> | @<timestamp-ms>")->required();
  seek->add_option("--topic,-t", opts->topics,
                   "Topic to seek, all its partitions (repeatable; default: every topic the "
                   "group has committed offsets for)")
      ->allow_extra_args(false);  // one topic per -t, so `-t a g` keeps `g` as the group
  seek->add_flag("--dry-run", opts->dry_run, "Print the new offsets without committing them");
  add_format_option(seek, *opts);
  add_client_options(seek, opts->client);
  seek->callback([opts] { run_seek(*opts); });

  auto* remove = group->add_subcommand(
      "delete", "Delete consumer groups and their committed offsets (they must have no members)");
  remove->add_option("groups", opts->groups, "Group ids")->required();
  add_client_options(remove, opts->client);
  remove->callback([opts] { run_delete(*opts); });
}

}  // namespace holdfast::cli
