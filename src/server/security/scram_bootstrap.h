// The first SCRAM users of a broker or cluster, without a password anywhere
// and without a window on a plain-text listener: `holdfast user create NAME
// --bootstrap-file F` writes salted credentials (one scram_credential_upserted
// metadata record per line, JSON), and the setting sasl.scram.bootstrap.file
// names that file. The active controller (a cluster) or the broker at start
// (a single node) appends each credential once (docs/security.md).
//
// "Once": a credential is due when the image has no credential for its
// (user, mechanism) and never had one from the bootstrap file
// (MetadataImage::scram_bootstrapped, replicated and in snapshots). Deleting
// a bootstrapped user later is therefore final, as with Kafka's
// `kafka-storage format --add-scram`; a user already created through
// AlterUserScramCredentials keeps that password.
#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "metadata/metadata_image.h"

namespace holdfast::server::security {

// Reads the file: every non-empty line a scram_credential_upserted record
// with at least 4096 iterations. Errors (io_error: unreadable; corrupt: a bad
// line) name the file and the line, never a key.
Result<std::vector<metadata::ScramCredentialUpserted>, metadata::Errc> load_scram_bootstrap_file(
    const std::string& path);

// The records to append now (bootstrap = true), in the file's order.
std::vector<metadata::ScramCredentialUpserted> scram_bootstrap_due(
    const metadata::MetadataImage& image,
    const std::vector<metadata::ScramCredentialUpserted>& wanted);

// One line of the file for `credential`.
std::string scram_bootstrap_line(const metadata::ScramCredentialUpserted& credential);

}  // namespace holdfast::server::security
