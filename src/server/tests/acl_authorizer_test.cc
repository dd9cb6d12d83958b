// The authoriser's rules (Kafka's): disabled allows all, super users bypass,
// no ACL on the resource follows allow.everyone.if.no.acl.found, deny wins,
// All matches every operation, implied Describe/DescribeConfigs, literal /
// wildcard / prefixed patterns, principal and host wildcards; the filters of
// DescribeAcls / DeleteAcls; names and super.users parsing.
#include <gtest/gtest.h>

#include "server/broker_config.h"
#include "server/security/acl.h"
#include "server/security/authorizer.h"

namespace holdfast::server::security {
namespace {

using R = AclResourceType;
using Op = AclOperation;

AclBinding acl(R type, std::string name, AclPatternType pattern, std::string principal, Op op,
               AclPermission permission, std::string host = "*") {
  return AclBinding{type, std::move(name), pattern, std::move(principal), std::move(host), op, permission};
}
AclBinding allow(std::string topic, std::string principal, Op op) {
  return acl(R::topic, std::move(topic), AclPatternType::literal, std::move(principal), op, AclPermission::allow);
}
AclBinding deny(std::string topic, std::string principal, Op op) {
  return acl(R::topic, std::move(topic), AclPatternType::literal, std::move(principal), op, AclPermission::deny);
}

const AuthorizerConfig kOn{true, false, {}};

bool can(const AclSet& acls, const std::string& principal, Op op, const std::string& topic = "orders",
         const AuthorizerConfig& config = kOn, const std::string& host = "10.0.0.1") {
  return authorize(config, acls, principal, host, R::topic, topic, op);
}

TEST(Authorizer, DisabledAllowsEverything) {
  AuthorizerConfig off;
  EXPECT_TRUE(can({deny("orders", "User:alice", Op::all)}, "User:alice", Op::write, "orders", off));
}

TEST(Authorizer, NoAclOnTheResourceFollowsAllowEveryone) {
  EXPECT_FALSE(can({}, "User:alice", Op::read));
  AuthorizerConfig open{true, true, {}};
  EXPECT_TRUE(can({}, "User:alice", Op::read, "orders", open));
  // An ACL on the resource (for someone else) makes the setting irrelevant.
  EXPECT_FALSE(can({allow("orders", "User:bob", Op::read)}, "User:alice", Op::read, "orders", open));
  // An ACL on another resource does not.
  EXPECT_TRUE(can({allow("payments", "User:bob", Op::read)}, "User:alice", Op::read, "orders", open));
}

TEST(Authorizer, SuperUsersBypassDenies) {
  AuthorizerConfig config{true, false, {"User:admin"}};
  AclSet acls{deny("orders", "User:admin", Op::all)};
  EXPECT_TRUE(can(acls, "User:admin", Op::write, "orders", config));
  EXPECT_FALSE(can(acls, "User:alice", Op::write, "orders", config));
}

TEST(Authorizer, AllowGrantsOnlyItsOperation) {
  AclSet acls{allow("orders", "User:alice", Op::read)};
  EXPECT_TRUE(can(acls, "User:alice", Op::read));
  EXPECT_FALSE(can(acls, "User:alice", Op::write));
  EXPECT_FALSE(can(acls, "User:bob", Op::read));
}

TEST(Authorizer, DenyWinsOverAllow) {
  AclSet acls{allow("orders", "User:alice", Op::write), deny("orders", "User:alice", Op::write)};
  EXPECT_FALSE(can(acls, "User:alice", Op::write));
  // A deny for the wildcard principal denies alice too.
  AclSet wildcard{allow("orders", "User:alice", Op::write), deny("orders", "User:*", Op::write)};
  EXPECT_FALSE(can(wildcard, "User:alice", Op::write));
  // A deny of another operation does not.
  AclSet other{allow("orders", "User:alice", Op::write), deny("orders", "User:alice", Op::read)};
  EXPECT_TRUE(can(other, "User:alice", Op::write));
}

TEST(Authorizer, AllMatchesEveryOperation) {
  EXPECT_TRUE(can({allow("orders", "User:alice", Op::all)}, "User:alice", Op::alter_configs));
  EXPECT_FALSE(can({allow("orders", "User:alice", Op::all), deny("orders", "User:alice", Op::all)},
                   "User:alice", Op::read));
}

TEST(Authorizer, ReadWriteDeleteAlterImplyDescribe) {
  for (Op op : {Op::read, Op::write, Op::remove, Op::alter}) {
    EXPECT_TRUE(can({allow("orders", "User:alice", op)}, "User:alice", Op::describe)) << int(op);
  }
  EXPECT_FALSE(can({allow("orders", "User:alice", Op::create)}, "User:alice", Op::describe));
  // A deny of Read does not deny Describe (Kafka: deny implies nothing).
  EXPECT_TRUE(can({allow("orders", "User:alice", Op::describe), deny("orders", "User:alice", Op::read)},
                  "User:alice", Op::describe));
}

TEST(Authorizer, AlterConfigsImpliesDescribeConfigs) {
  EXPECT_TRUE(can({allow("orders", "User:alice", Op::alter_configs)}, "User:alice", Op::describe_configs));
  EXPECT_FALSE(can({allow("orders", "User:alice", Op::describe_configs)}, "User:alice", Op::alter_configs));
}

TEST(Authorizer, LiteralWildcardAndPrefixedPatterns) {
  EXPECT_TRUE(can({allow("*", "User:alice", Op::read)}, "User:alice", Op::read, "anything"));
  AclSet prefixed{acl(R::topic, "ord", AclPatternType::prefixed, "User:alice", Op::read, AclPermission::allow)};
  EXPECT_TRUE(can(prefixed, "User:alice", Op::read, "orders"));
  EXPECT_TRUE(can(prefixed, "User:alice", Op::read, "ord"));
  EXPECT_FALSE(can(prefixed, "User:alice", Op::read, "or"));
  EXPECT_FALSE(can(prefixed, "User:alice", Op::read, "payments"));
  // A literal "ord*" is a name, not a pattern.
  EXPECT_FALSE(can({allow("ord*", "User:alice", Op::read)}, "User:alice", Op::read, "orders"));
  // A prefixed deny beats a literal allow.
  AclSet mixed{allow("orders", "User:alice", Op::read),
               acl(R::topic, "or", AclPatternType::prefixed, "User:alice", Op::read, AclPermission::deny)};
  EXPECT_FALSE(can(mixed, "User:alice", Op::read, "orders"));
  // Resource types do not mix.
  AclSet group{acl(R::group, "orders", AclPatternType::literal, "User:alice", Op::read, AclPermission::allow)};
  EXPECT_FALSE(can(group, "User:alice", Op::read, "orders"));
}

TEST(Authorizer, HostsMatchExactlyOrByWildcard) {
  AclSet acls{acl(R::topic, "orders", AclPatternType::literal, "User:alice", Op::read, AclPermission::allow,
                  "10.0.0.1")};
  EXPECT_TRUE(can(acls, "User:alice", Op::read, "orders", kOn, "10.0.0.1"));
  EXPECT_FALSE(can(acls, "User:alice", Op::read, "orders", kOn, "10.0.0.2"));
  AclSet deny_host{allow("orders", "User:alice", Op::read),
                   acl(R::topic, "orders", AclPatternType::literal, "User:alice", Op::read,
                       AclPermission::deny, "10.0.0.2")};
  EXPECT_TRUE(can(deny_host, "User:alice", Op::read, "orders", kOn, "10.0.0.1"));
  EXPECT_FALSE(can(deny_host, "User:alice", Op::read, "orders", kOn, "10.0.0.2"));
}

TEST(Authorizer, AuthorizeAnyOfType) {
  AclSet acls{allow("orders", "User:alice", Op::write)};
  EXPECT_TRUE(authorize_any(kOn, acls, "User:alice", "h", R::topic, Op::write));
  EXPECT_FALSE(authorize_any(kOn, acls, "User:bob", "h", R::topic, Op::write));
  acls.insert(deny("orders", "User:alice", Op::write));
  EXPECT_FALSE(authorize_any(kOn, acls, "User:alice", "h", R::topic, Op::write));
  AclSet wildcard_deny{allow("orders", "User:alice", Op::write), deny("*", "User:alice", Op::write)};
  EXPECT_FALSE(authorize_any(kOn, wildcard_deny, "User:alice", "h", R::topic, Op::write));
}

TEST(Authorizer, PeerHost) {
  EXPECT_EQ(peer_host("10.1.2.3:5000"), "10.1.2.3");
  EXPECT_EQ(peer_host("[::1]:5000"), "::1");
  EXPECT_EQ(peer_host("::1"), "::1");
}

TEST(AclFilters, MatchAnyAndLiteral) {
  const AclBinding literal = allow("orders", "User:alice", Op::read);
  const AclBinding prefixed =
      acl(R::topic, "ord", AclPatternType::prefixed, "User:bob", Op::write, AclPermission::deny);
  const AclBinding wildcard = allow("*", "User:carol", Op::describe);
  const AclSet all{literal, prefixed, wildcard};

  EXPECT_EQ(matching_bindings(all, AclFilter{}).size(), 3u);
  AclFilter match{R::topic, "orders", AclPatternType::match};
  EXPECT_EQ(matching_bindings(all, match).size(), 3u);  // literal, prefix and wildcard apply
  AclFilter any_name{R::topic, "orders", AclPatternType::any};
  EXPECT_EQ(matching_bindings(all, any_name), std::vector<AclBinding>{literal});
  AclFilter prefixed_only{R::topic, std::nullopt, AclPatternType::prefixed};
  EXPECT_EQ(matching_bindings(all, prefixed_only), std::vector<AclBinding>{prefixed});
  AclFilter by_principal;
  by_principal.principal = "User:bob";
  EXPECT_EQ(matching_bindings(all, by_principal), std::vector<AclBinding>{prefixed});
  AclFilter by_permission;
  by_permission.permission = AclPermission::allow;
  by_permission.operation = Op::read;
  EXPECT_EQ(matching_bindings(all, by_permission), std::vector<AclBinding>{literal});
  AclFilter groups{R::group};
  EXPECT_TRUE(matching_bindings(all, groups).empty());
}

TEST(AclFilters, UnknownCodesAreRefused) {
  AclFilter f;
  EXPECT_EQ(check_filter(f), "");
  f.operation = Op::unknown;
  EXPECT_NE(check_filter(f), "");
  f = AclFilter{};
  f.resource_type = AclResourceType(42);
  EXPECT_NE(check_filter(f), "");
}

TEST(AclNames, RoundTripAndKafkaSpellings) {
  for (int op = 1; op <= 14; ++op) {
    EXPECT_EQ(parse_operation(operation_name(Op(op))), Op(op));
  }
  EXPECT_EQ(parse_operation("IDEMPOTENT_WRITE"), Op::idempotent_write);
  EXPECT_EQ(parse_operation("delete"), Op::remove);
  EXPECT_EQ(parse_resource_type("transactional-id"), R::transactional_id);
  EXPECT_EQ(parse_pattern_type("PREFIXED"), AclPatternType::prefixed);
  EXPECT_EQ(parse_permission("deny"), AclPermission::deny);
  EXPECT_FALSE(parse_operation("fly"));
}

TEST(AuthorizerSettings, ParsedFromProperties) {
  BrokerConfig config;
  EXPECT_FALSE(config.authorizer.enabled);
  EXPECT_FALSE(config.authorizer.allow_everyone_if_no_acl_found);
  ASSERT_TRUE(apply_setting(config, "authorizer.enabled", "true"));
  EXPECT_TRUE(config.authorizer.enabled);
  ASSERT_TRUE(apply_setting(config, "authorizer.class.name", ""));
  EXPECT_FALSE(config.authorizer.enabled);
  ASSERT_TRUE(apply_setting(config, "authorizer.class.name",
                            "org.apache.kafka.metadata.authorizer.StandardAuthorizer"));
  EXPECT_TRUE(config.authorizer.enabled);
  EXPECT_FALSE(apply_setting(config, "authorizer.class.name", "com.example.Mine"));
  ASSERT_TRUE(apply_setting(config, "allow.everyone.if.no.acl.found", "true"));
  EXPECT_TRUE(config.authorizer.allow_everyone_if_no_acl_found);
  ASSERT_TRUE(apply_setting(config, "super.users", "User:admin; User:ops;"));
  EXPECT_EQ(config.authorizer.super_users, (std::vector<std::string>{"User:admin", "User:ops"}));
  EXPECT_FALSE(apply_setting(config, "super.users", "admin"));
}

}  // namespace
}  // namespace holdfast::server::security
