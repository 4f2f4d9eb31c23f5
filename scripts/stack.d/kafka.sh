# shellcheck shell=bash
# Component "kafka" of scripts/stack.sh: Apache Kafka ${KAFKA_VERSION}, KRaft combined mode
# (broker + controller in one JVM), single node, on ${KAFKA_HOST}:${KAFKA_PORT}.
#
# Installed from Maven Central by deploy/local/kafka/pom.xml into <cache>/kafka/libs and
# run as `java -cp '<libs>/*' kafka.Kafka <cache>/kafka/server.properties`.
# Layout under <cache>/kafka:  libs/  data/ (log.dirs)  tls/  server.properties  server.log  kafka.pid
#
# Listeners (ports in scripts/stack.versions): PLAINTEXT (no auth, a super user), SASL_SSL
# (SCRAM-SHA-512 users $KAFKA_SOURCE_USER, $KAFKA_SINK_USER, $KAFKA_INSPECT_USER) and MTLS (TLS
# with a required client certificate; CN=<user> is the principal User:<user>), with ACLs
# enforced by StandardAuthorizer on the secured ones. tls/ holds the generated CA (ca.pem),
# the broker's key store and a client certificate + key per user (<user>.pem, <user>-key.pem).
#
# Extra: `scripts/stack.sh exec kafka TOOL ARGS...` runs a Kafka command line tool on the
# same class path, TOOL one of: topics, console-producer, console-consumer, consumer-groups,
# transactions, get-offsets, api-versions, metadata-quorum, storage, or a main class name.
# Example: scripts/stack.sh exec kafka topics --bootstrap-server 127.0.0.1:19092 --list

KAFKA_DEPLOY="$STACK_REPO/deploy/local/kafka"
KAFKA_MARKER="-Dlogbridge.stack=kafka"

_kafka_dir()     { stack_dir kafka; }
_kafka_libs()    { printf '%s/libs\n' "$(_kafka_dir)"; }
_kafka_data()    { printf '%s/data\n' "$(_kafka_dir)"; }
_kafka_pidfile() { printf '%s/kafka.pid\n' "$(_kafka_dir)"; }
_kafka_logfile() { printf '%s/server.log\n' "$(_kafka_dir)"; }
_kafka_props()   { printf '%s/server.properties\n' "$(_kafka_dir)"; }
_kafka_tls()     { printf '%s/tls\n' "$(_kafka_dir)"; }

_kafka_installed() { [[ -f "$(_kafka_libs)/.installed-$KAFKA_VERSION" ]]; }

kafka_install() {
  if _kafka_installed; then
    stack_log "kafka: $KAFKA_VERSION already installed in $(_kafka_libs)"
    return 0
  fi
  stack_java 17 KAFKA_JAVA_HOME >/dev/null
  local libs; libs="$(_kafka_libs)"
  stack_log "kafka: installing Apache Kafka $KAFKA_VERSION from Maven Central into $libs"
  rm -rf "$libs.tmp"
  stack_mvn -f "$KAFKA_DEPLOY/pom.xml" \
    "$STACK_MVN_DEPENDENCY_PLUGIN:copy-dependencies" \
    -Dkafka.version="$KAFKA_VERSION" -Dlog4j.version="$KAFKA_LOG4J_VERSION" \
    -DincludeScope=runtime -DoutputDirectory="$libs.tmp"
  [[ -f "$libs.tmp/kafka_2.13-$KAFKA_VERSION.jar" ]] \
    || stack_die "kafka: kafka_2.13-$KAFKA_VERSION.jar missing after maven ran; see the output above"
  rm -rf "$libs"
  mv "$libs.tmp" "$libs"
  : >"$libs/.installed-$KAFKA_VERSION"
  stack_log "kafka: installed ($(find "$libs" -name '*.jar' | wc -l) jars)"
}

# _kafka_java [JVM-OPTS...] -- MAIN ARGS...: java on the Kafka class path
_kafka_java() {
  local java; java="$(stack_java 17 KAFKA_JAVA_HOME)"
  local opts=()
  while (($#)) && [[ "$1" != "--" ]]; do opts+=("$1"); shift; done
  [[ "${1:-}" == "--" ]] && shift
  "$java" "${opts[@]}" \
    -Dlog4j2.configurationFile="$KAFKA_DEPLOY/log4j2.properties" \
    -cp "$(_kafka_libs)/*" "$@"
}

_kafka_write_props() {
  sed -e "s|@KAFKA_HOST@|$KAFKA_HOST|g" \
      -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" \
      -e "s|@KAFKA_CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
      -e "s|@KAFKA_SASL_SSL_PORT@|$KAFKA_SASL_SSL_PORT|g" \
      -e "s|@KAFKA_MTLS_PORT@|$KAFKA_MTLS_PORT|g" \
      -e "s|@KAFKA_TLS_DIR@|$(_kafka_tls)|g" \
      -e "s|@KAFKA_DATA_DIR@|$(_kafka_data)|g" \
      "$KAFKA_DEPLOY/server.properties" >"$(_kafka_props).tmp"
  mv -f "$(_kafka_props).tmp" "$(_kafka_props)"
}

# _kafka_certs: a CA, the broker's certificate (SAN 127.0.0.1, localhost and KAFKA_HOST) in a
# PEM key store, and a client certificate per user, generated once with openssl. Keys are
# unencrypted PKCS#8: these are loopback test credentials, never a deployment's.
_kafka_certs() {
  local dir; dir="$(_kafka_tls)"
  [[ -f "$dir/.complete" ]] && return 0
  stack_need_cmd openssl "Install it with: apt-get install -y openssl"
  stack_log "kafka: generating a test CA and certificates in $dir"
  rm -rf "$dir"; mkdir -p "$dir"
  (
    cd "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca-key.pem -out ca.pem -days 3650 \
      -subj "/CN=logbridge local test CA" >/dev/null 2>&1
    _kafka_sign() { # NAME SUBJECT [SAN]
      openssl req -newkey rsa:2048 -nodes -keyout "$1-key.pem" -out "$1.csr" -subj "$2" >/dev/null 2>&1
      local ext=(); [[ -n "${3:-}" ]] && { printf 'subjectAltName=%s\n' "$3" >"$1.ext"; ext=(-extfile "$1.ext"); }
      openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 3650 \
        -out "$1.pem" "${ext[@]}" >/dev/null 2>&1
      rm -f "$1.csr" "$1.ext"
    }
    _kafka_sign broker "/CN=$KAFKA_HOST" "IP:127.0.0.1,DNS:localhost,$( [[ "$KAFKA_HOST" =~ ^[0-9.]+$ ]] && echo "IP:$KAFKA_HOST" || echo "DNS:$KAFKA_HOST")"
    cat broker-key.pem broker.pem >broker-keystore.pem
    local u
    for u in "$KAFKA_SOURCE_USER" "$KAFKA_SINK_USER" "$KAFKA_INSPECT_USER"; do
      _kafka_sign "$u" "/CN=$u/O=logbridge"
    done
  ) || stack_die "kafka: generating certificates with openssl failed in $dir"
  chmod 600 "$dir"/*-key.pem
  : >"$dir/.complete"
}

# _kafka_scram_users: create (or update) the SCRAM-SHA-512 users through the plaintext
# listener, once per set of credentials (a marker in the data directory).
_kafka_scram_users() {
  local marker sum
  sum="$(printf '%s\n' "$KAFKA_SOURCE_USER:$KAFKA_SOURCE_PASSWORD" "$KAFKA_SINK_USER:$KAFKA_SINK_PASSWORD" \
    "$KAFKA_INSPECT_USER:$KAFKA_INSPECT_PASSWORD" | sha256sum | cut -c1-16)"
  marker="$(_kafka_data)/.scram-users-$sum"
  [[ -f "$marker" ]] && return 0
  local u p
  while read -r u p; do
    _kafka_java -Xmx256m -Dlogbridge.log.level=WARN -- kafka.admin.ConfigCommand \
      --bootstrap-server "$KAFKA_HOST:$KAFKA_PORT" --alter --entity-type users --entity-name "$u" \
      --add-config "SCRAM-SHA-512=[iterations=4096,password=$p]" >/dev/null \
      || stack_die "kafka: creating SCRAM user $u failed"
  done <<<"$KAFKA_SOURCE_USER $KAFKA_SOURCE_PASSWORD
$KAFKA_SINK_USER $KAFKA_SINK_PASSWORD
$KAFKA_INSPECT_USER $KAFKA_INSPECT_PASSWORD"
  : >"$marker"
  stack_log "kafka: SCRAM-SHA-512 users $KAFKA_SOURCE_USER, $KAFKA_SINK_USER, $KAFKA_INSPECT_USER ready"
}

# format the storage once; later starts reuse it (topics and data survive restarts)
_kafka_format() {
  local data; data="$(_kafka_data)"
  if [[ -f "$data/meta.properties" ]]; then
    return 0
  fi
  mkdir -p "$data"
  local cluster_id
  cluster_id="$(_kafka_java -Dlogbridge.log.level=WARN -- kafka.tools.StorageTool random-uuid | tail -n 1)"
  [[ -n "$cluster_id" ]] || stack_die "kafka: could not generate a cluster id (kafka.tools.StorageTool random-uuid)"
  stack_log "kafka: formatting storage in $data (cluster id $cluster_id)"
  _kafka_java -Dlogbridge.log.level=WARN -- kafka.tools.StorageTool format \
      -t "$cluster_id" -c "$(_kafka_props)" >&2 \
    || stack_die "kafka: storage format failed; if $data holds an old or foreign cluster, remove it with: scripts/stack.sh clean kafka"
}

_kafka_ready() {
  stack_port_open "$KAFKA_HOST" "$KAFKA_PORT" \
    && grep -q 'Kafka Server started' "$(_kafka_logfile)" 2>/dev/null
}

kafka_up() {
  local pid
  if pid="$(stack_pid_alive "$(_kafka_pidfile)" "$KAFKA_MARKER")"; then
    stack_log "kafka: already running (pid $pid) on $KAFKA_HOST:$KAFKA_PORT"
    return 0
  fi
  _kafka_installed || stack_die "kafka: not installed; run: scripts/stack.sh install kafka"
  stack_check_port_free kafka "$KAFKA_HOST" "$KAFKA_PORT"
  stack_check_port_free kafka-controller "$KAFKA_HOST" "$KAFKA_CONTROLLER_PORT"
  stack_check_port_free kafka-sasl-ssl "$KAFKA_HOST" "$KAFKA_SASL_SSL_PORT"
  stack_check_port_free kafka-mtls "$KAFKA_HOST" "$KAFKA_MTLS_PORT"
  _kafka_certs
  _kafka_write_props
  _kafka_format
  local java; java="$(stack_java 17 KAFKA_JAVA_HOME)"
  local t0=$SECONDS
  stack_log "kafka: starting on $KAFKA_HOST:$KAFKA_PORT (log $(_kafka_logfile))"
  # shellcheck disable=SC2086  # heap and JIT options are word lists
  stack_spawn "$(_kafka_pidfile)" "$(_kafka_logfile)" \
    "$java" $KAFKA_HEAP_OPTS $KAFKA_JIT_OPTS "$KAFKA_MARKER" \
    -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExplicitGCInvokesConcurrent \
    -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$KAFKA_DEPLOY/log4j2.properties" \
    -cp "$(_kafka_libs)/*" kafka.Kafka "$(_kafka_props)"
  stack_wait_ready kafka "$(_kafka_pidfile)" "$KAFKA_MARKER" "$(_kafka_logfile)" \
    "$KAFKA_START_TIMEOUT" _kafka_ready
  _kafka_scram_users
  stack_log "kafka: ready on $KAFKA_HOST:$KAFKA_PORT, SASL_SSL :$KAFKA_SASL_SSL_PORT, mTLS :$KAFKA_MTLS_PORT (pid $(<"$(_kafka_pidfile)"), $((SECONDS - t0))s)"
}

kafka_down() {
  stack_stop kafka "$(_kafka_pidfile)" "$KAFKA_MARKER" "$KAFKA_STOP_TIMEOUT"
}

kafka_status() {
  local pid
  if pid="$(stack_pid_alive "$(_kafka_pidfile)" "$KAFKA_MARKER")"; then
    if stack_port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
      printf 'kafka     running  pid %-7s PLAINTEXT://%s:%s SASL_SSL :%s MTLS :%s  data %s\n' \
        "$pid" "$KAFKA_HOST" "$KAFKA_PORT" "$KAFKA_SASL_SSL_PORT" "$KAFKA_MTLS_PORT" "$(_kafka_data)"
      return 0
    fi
    printf 'kafka     starting pid %-7s (port %s not open yet; log %s)\n' "$pid" "$KAFKA_PORT" "$(_kafka_logfile)"
    return 1
  fi
  if _kafka_installed; then
    printf 'kafka     stopped  (installed %s)\n' "$KAFKA_VERSION"
  else
    printf 'kafka     stopped  (not installed)\n'
  fi
  return 1
}

kafka_env() {
  printf 'export KAFKA_BROKERS=%s:%s\n' "$KAFKA_HOST" "$KAFKA_PORT"
  # the secured listeners and their test credentials (tests/testenv SecuredKafka)
  printf 'export KAFKA_SASL_SSL_BROKERS=%s:%s\n' "$KAFKA_HOST" "$KAFKA_SASL_SSL_PORT"
  printf 'export KAFKA_MTLS_BROKERS=%s:%s\n' "$KAFKA_HOST" "$KAFKA_MTLS_PORT"
  printf 'export KAFKA_TLS_DIR=%s\n' "$(_kafka_tls)"
  printf 'export KAFKA_SOURCE_USER=%s KAFKA_SOURCE_PASSWORD=%s\n' "$KAFKA_SOURCE_USER" "$KAFKA_SOURCE_PASSWORD"
  printf 'export KAFKA_SINK_USER=%s KAFKA_SINK_PASSWORD=%s\n' "$KAFKA_SINK_USER" "$KAFKA_SINK_PASSWORD"
  printf 'export KAFKA_INSPECT_USER=%s KAFKA_INSPECT_PASSWORD=%s\n' "$KAFKA_INSPECT_USER" "$KAFKA_INSPECT_PASSWORD"
}

kafka_logs() { _kafka_logfile; }

kafka_clean() {
  stack_log "kafka: deleting data in $(_kafka_data)"
  rm -rf "$(_kafka_data)"
}

kafka_exec() {
  (($#)) || stack_die "usage: scripts/stack.sh exec kafka TOOL ARGS... (see scripts/stack.d/kafka.sh)"
  _kafka_installed || stack_die "kafka: not installed; run: scripts/stack.sh install kafka"
  local tool="$1"; shift
  local main
  case "$tool" in
    topics)           main=org.apache.kafka.tools.TopicCommand ;;
    console-producer) main=org.apache.kafka.tools.ConsoleProducer ;;
    console-consumer) main=org.apache.kafka.tools.consumer.ConsoleConsumer ;;
    consumer-groups)  main=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
    transactions)     main=org.apache.kafka.tools.TransactionsCommand ;;
    get-offsets)      main=org.apache.kafka.tools.GetOffsetShell ;;
    api-versions)     main=org.apache.kafka.tools.BrokerApiVersionsCommand ;;
    metadata-quorum)  main=org.apache.kafka.tools.MetadataQuorumCommand ;;
    storage)          main=kafka.tools.StorageTool ;;
    configs)          main=kafka.admin.ConfigCommand ;;
    acls)             main=org.apache.kafka.tools.AclCommand ;;
    *.*)              main="$tool" ;;
    *) stack_die "kafka: unknown tool '$tool' (see scripts/stack.d/kafka.sh)" ;;
  esac
  _kafka_java -Xmx512m -Dlogbridge.log.level=WARN -- "$main" "$@"
}
