// File: format_test.cc
// Governance columns of `tessera clients list` and refused clients in `tessera run status`.
#include "tools/cli/format.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace tessera::cli {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(ClientListTextTest, ShowsOrganizationAndDataCard) {
  wire::v1::ListClientsResponse clients;
  wire::v1::ClientInfo* a = clients.add_clients();
  a->set_name("site-a");
  a->set_organization("Alpha Health");
  a->mutable_data_card()->set_name("xray-a");
  a->mutable_data_card()->set_license("CC-BY-4.0");
  wire::v1::ClientInfo* b = clients.add_clients();
  b->set_name("site-b");  // no organization (--insecure), no data card
  const std::string text = ClientListText(clients);
  EXPECT_THAT(text, AllOf(HasSubstr("organization"), HasSubstr("license")));
  EXPECT_THAT(text, AllOf(HasSubstr("Alpha Health"), HasSubstr("xray-a"), HasSubstr("CC-BY-4.0")));
  EXPECT_THAT(text, HasSubstr("site-b                   -"));
}

TEST(RunStatusTextTest, ListsRefusedClients) {
  wire::v1::RunStatus status;
  status.set_run_id("r1");
  EXPECT_THAT(RunStatusText(status), Not(HasSubstr("refused")));
  status.add_refused_clients("site-d: data card license \"proprietary\" is not allowed");
  EXPECT_THAT(RunStatusText(status),
              HasSubstr("  refused: site-d: data card license \"proprietary\" is not allowed\n"));
}

}  // namespace
}  // namespace tessera::cli
