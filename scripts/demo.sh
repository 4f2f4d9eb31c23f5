#!/usr/bin/env bash
# The main job on the local stack (make demo): seed a source database, run the
# source and sink connectors in mongosync mode, drive start → canCommit →
# commit through the control API, then verify the destination equals the source.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(scripts/stack.sh env)"
BIN=${BIN:-bin}
PREFIX=${DEMO_PREFIX:-demo-$(date +%s)}
DB=${DEMO_DB:-demo_shop}
API=http://127.0.0.1:27182/api/v1
LOGS=$(mktemp -d)
# The control API's mutating endpoints need a bearer token, on loopback too.
TOKEN_FILE="$LOGS/api-token"
(umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$TOKEN_FILE")
AUTH="Authorization: Bearer $(cat "$TOKEN_FILE")"
say() { printf '\n== %s\n' "$*"; }

cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; echo "logs: $LOGS"; }
pids=()
trap cleanup EXIT

say "seeding $DB on the source ($SOURCE_URI); dropping it on both sides first"
go run ./tests/workload/cmd/workload --uri "$DEST_URI" --dbs "$DB" --drop --docs 0 --ops 0 >/dev/null
go run ./tests/workload/cmd/workload --uri "$SOURCE_URI" --seed 1 --dbs "$DB" --drop --docs 2000 --ops 2000

say "starting sink-connector and source-connector (topic prefix $PREFIX)"
"$BIN/sink-connector" --cluster0 "$SOURCE_URI" --cluster1 "$DEST_URI" --kafka-brokers "$KAFKA_BROKERS" \
  --topic-prefix "$PREFIX" --group "$PREFIX-sink" --http-addr 127.0.0.1:27183 --api-token-file "$TOKEN_FILE" >"$LOGS/sink.log" 2>&1 &
pids+=($!)
"$BIN/source-connector" --cluster0 "$SOURCE_URI" --cluster1 "$DEST_URI" --kafka-brokers "$KAFKA_BROKERS" \
  --topic-prefix "$PREFIX" --sink-group "$PREFIX-sink" --http-addr 127.0.0.1:27182 --api-token-file "$TOKEN_FILE" >"$LOGS/source.log" 2>&1 &
pids+=($!)
for _ in $(seq 60); do curl -fs "$API/progress" >/dev/null 2>&1 && break; sleep 0.5; done

say "POST /start"
curl -fsS -X POST "$API/start" -H "$AUTH" -H 'Content-Type: application/json' \
  -d "{\"source\":\"cluster0\",\"destination\":\"cluster1\",\"includeNamespaces\":[{\"database\":\"$DB\"}]}"
echo

say "live writes while syncing"
go run ./tests/workload/cmd/workload --uri "$SOURCE_URI" --seed 2 --dbs "$DB" --docs 0 --ops 1000

say "waiting for canCommit"
for i in $(seq 240); do
  p=$(curl -fsS "$API/progress")
  if grep -q '"canCommit":true' <<<"$p"; then break; fi
  ((i % 10 == 0)) && echo "$p" | head -c 400 && echo
  sleep 1
done
grep -q '"canCommit":true' <<<"$p" || { echo "demo: canCommit never became true: $p"; exit 1; }

say "POST /commit"
curl -fsS -X POST "$API/commit" -H "$AUTH"; echo
for _ in $(seq 120); do
  p=$(curl -fsS "$API/progress")
  grep -q '"state":"COMMITTED"' <<<"$p" && break
  sleep 1
done
echo "$p" | head -c 600; echo
grep -q '"state":"COMMITTED"' <<<"$p" || { echo "demo: commit did not complete"; exit 1; }

say "verifying destination == source"
"$BIN/logbridge-verify" --source-uri "$SOURCE_URI" --dest-uri "$DEST_URI" --include "$DB.*"
say "demo done: $DB synced source → Kafka ($PREFIX.*) → destination, committed and verified"
