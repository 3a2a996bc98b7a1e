#!/usr/bin/env bash
# Enforces where third-party libraries and sibling folders may be included
# (docs/architecture.md, ../shared/STYLE.md "Keep each third-party dependency in one place").
# Usage: include_policy_test.sh SOURCE_DIR
set -uo pipefail
cd "$1"
fail=0
# rule: PATTERN ALLOWED_PREFIX_REGEX DESCRIPTION
check() {
  local pattern=$1 allowed=$2 what=$3
  local hits
  hits=$(grep -rnE --include='*.h' --include='*.cc' "^#include [<\"]($pattern)" \
           core coordinator client aggregation privacy tools tests 2>/dev/null |
         grep -vE "^($allowed)" || true)
  if [ -n "$hits" ]; then
    echo "FAIL: $what"
    echo "$hits"
    fail=1
  else
    echo "ok:   $what"
  fi
}
check 'torch/|ATen/|c10/' 'client/training/|client/lm/transformer/|tools/model/' \
  "LibTorch only in client/training, client/lm/transformer and tools/model"
check 're2/' 'client/lm/tokenizer/' "RE2 only in client/lm/tokenizer"
check 'sentencepiece' 'client/lm/tokenizer/' "libsentencepiece only in client/lm/tokenizer"
check 'rocksdb/' 'coordinator/state/' "RocksDB only in coordinator/state"
# core/crypto (SHA-256, hex, OpenSSL errors) sits below core/serde and privacy/crypto.
check 'openssl/' 'core/crypto/|privacy/crypto/' "OpenSSL only in core/crypto and privacy/crypto"
check 'core/crypto/openssl_error\.h' 'core/crypto/|privacy/crypto/' \
  "the OpenSSL error helper only in core/crypto and privacy/crypto"
check 'toml\+\+/' 'core/config/' "toml++ only in core/config"
check 'yaml-cpp/' 'core/config/|tests/|[^:]*_test\.cc:' "yaml-cpp only in core/config (and tests)"
check 'httplib\.h' 'coordinator/service/' "cpp-httplib only in coordinator/service"
check 'grpcpp/|grpc/' 'core/serde/|coordinator/service/|client/runtime/|tools/cli/|tools/bench/|tests/' \
  "gRPC only in serde, services, the client runtime, the CLI, benches and tests"
# tools/sim is the simulator: the one program that joins the coordinator core and client training.
check 'client/' 'client/|tests/|tools/model/|tools/sim/' \
  "nothing outside client/ (and tools/model, tools/sim, tests) includes client/"
# tools/bench measures the coordinator's own classes (start-up, commit latency) in process.
check 'coordinator/' 'coordinator/|tests/|tools/sim/|tools/bench/' \
  "nothing outside coordinator/ (and tools/sim, tools/bench, tests) includes coordinator/"
# The round loop's stages (docs/architecture.md "The round loop") never see RunManager: it
# calls them, one way. Only RunManager's own files include its private header.
run_manager_files='coordinator/round/(run_manager|run_lifecycle|run_tasks|round_driver|train_round|round_tasks|select_clients|evaluate_round|export_documents)[._]'
check 'coordinator/round/run_manager_internal\.h' "$run_manager_files" \
  "only RunManager's own files include run_manager_internal.h"
check 'coordinator/round/run_manager\.h' \
  "$run_manager_files|coordinator/round/[^:]*_test\.cc:|coordinator/service/|tools/|tests/" \
  "the round loop's stages do not include run_manager.h (RunManager calls them)"
# core/governance and privacy/provenance hash and sign governance records (docs/governance.md).
check 'tessera/wire|tessera/storage' \
  'core/serde/|core/config/|core/governance/|privacy/provenance/|coordinator/|client/runtime/|tools/|tests/' \
  "generated protos stay out of core/model, aggregation, client data/training and privacy (but provenance)"
# core/ is the bottom layer: it neither includes privacy/ nor links a library defined there.
check 'privacy/' '(privacy|aggregation|coordinator|client|tools|tests)/' \
  "nothing in core/ includes privacy/"
privacy_targets=$(grep -rhoE 'tessera_cc_(library|test|binary)\(NAME [A-Za-z0-9_-]+' \
                    privacy --include=CMakeLists.txt | sed 's/.*NAME //' | sort -u)
hits=""
for t in $privacy_targets; do
  hits+=$(grep -rnE --include=CMakeLists.txt "tessera::$t([^A-Za-z0-9_-]|$)" core || true)
done
if [ -z "$privacy_targets" ]; then
  echo "FAIL: found no library defined under privacy/ (is this the source root?)"
  fail=1
elif [ -n "$hits" ]; then
  echo "FAIL: nothing in core/ links a privacy/ library"
  echo "$hits"
  fail=1
else
  echo "ok:   nothing in core/ links a privacy/ library"
fi
exit $fail
