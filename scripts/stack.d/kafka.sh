# shellcheck shell=bash
# Component "kafka" of scripts/stack.sh: Apache Kafka ${KAFKA_VERSION}, KRaft combined mode
# (broker + controller in one JVM), single node, on ${KAFKA_HOST}:${KAFKA_PORT}.
#
# Installed from Maven Central by deploy/local/kafka/pom.xml into <cache>/kafka/libs and
# run as `java -cp '<libs>/*' kafka.Kafka <cache>/kafka/server.properties`.
# Layout under <cache>/kafka:  libs/  data/ (log.dirs)  server.properties  server.log  kafka.pid
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
      -e "s|@KAFKA_DATA_DIR@|$(_kafka_data)|g" \
      "$KAFKA_DEPLOY/server.properties" >"$(_kafka_props).tmp"
  mv -f "$(_kafka_props).tmp" "$(_kafka_props)"
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
  stack_log "kafka: ready on $KAFKA_HOST:$KAFKA_PORT (pid $(<"$(_kafka_pidfile)"), $((SECONDS - t0))s)"
}

kafka_down() {
  stack_stop kafka "$(_kafka_pidfile)" "$KAFKA_MARKER" "$KAFKA_STOP_TIMEOUT"
}

kafka_status() {
  local pid
  if pid="$(stack_pid_alive "$(_kafka_pidfile)" "$KAFKA_MARKER")"; then
    if stack_port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
      printf 'kafka     running  pid %-7s PLAINTEXT://%s:%s  data %s\n' \
        "$pid" "$KAFKA_HOST" "$KAFKA_PORT" "$(_kafka_data)"
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
    *.*)              main="$tool" ;;
    *) stack_die "kafka: unknown tool '$tool' (see scripts/stack.d/kafka.sh)" ;;
  esac
  _kafka_java -Xmx512m -Dlogbridge.log.level=WARN -- "$main" "$@"
}
