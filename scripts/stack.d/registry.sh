# shellcheck shell=bash
# Component "registry" of scripts/stack.sh: Apicurio Registry ${REGISTRY_VERSION}, a schema
# registry whose Confluent-compatible API is served under /apis/ccompat/v7, on
# ${REGISTRY_HOST}:${REGISTRY_PORT}. Clients use SCHEMA_REGISTRY_URL (see registry_env).
#
# Installed from Maven Central by deploy/local/registry/pom.xml (the release's prebuilt
# Quarkus distribution) into <cache>/registry/apicurio-registry-<version>/, run with
# `java -jar quarkus-run.jar`. Storage is an H2 database file under <cache>/registry/data,
# so schema ids survive restarts (records in Kafka keep resolving). The global
# compatibility rule defaults to BACKWARD, like Confluent Schema Registry.
# Health: http://${REGISTRY_HOST}:${REGISTRY_MGMT_PORT}/health/ready

REGISTRY_DEPLOY="$STACK_REPO/deploy/local/registry"
REGISTRY_MARKER="-Dlogbridge.stack=registry"
REGISTRY_CCOMPAT_PATH="/apis/ccompat/v7"

_registry_dir()     { stack_dir registry; }
_registry_home()    { printf '%s/apicurio-registry-%s\n' "$(_registry_dir)" "$REGISTRY_VERSION"; }
_registry_data()    { printf '%s/data\n' "$(_registry_dir)"; }
_registry_pidfile() { printf '%s/registry.pid\n' "$(_registry_dir)"; }
_registry_logfile() { printf '%s/registry.log\n' "$(_registry_dir)"; }
_registry_url()     { printf 'http://%s:%s%s\n' "$REGISTRY_HOST" "$REGISTRY_PORT" "$REGISTRY_CCOMPAT_PATH"; }

_registry_installed() { [[ -f "$(_registry_home)/.installed" && -f "$(_registry_home)/quarkus-run.jar" ]]; }

registry_install() {
  if _registry_installed; then
    stack_log "registry: Apicurio Registry $REGISTRY_VERSION already installed in $(_registry_home)"
    return 0
  fi
  stack_java 21 REGISTRY_JAVA_HOME >/dev/null
  stack_need_cmd tar "Install tar (apt-get install -y tar)."
  local home tmp
  home="$(_registry_home)"
  tmp="$(_registry_dir)/download.tmp"
  stack_log "registry: installing Apicurio Registry $REGISTRY_VERSION from Maven Central into $home"
  rm -rf "$tmp" "$home.tmp"
  stack_mvn -f "$REGISTRY_DEPLOY/pom.xml" \
    "$STACK_MVN_DEPENDENCY_PLUGIN:copy-dependencies" \
    -Dregistry.version="$REGISTRY_VERSION" -DoutputDirectory="$tmp"
  local archive="$tmp/apicurio-registry-app-$REGISTRY_VERSION-all.tar.gz"
  [[ -f "$archive" ]] || stack_die "registry: $archive missing after maven ran; see the output above"
  mkdir -p "$home.tmp"
  tar -xzf "$archive" -C "$home.tmp" || stack_die "registry: could not unpack $archive"
  [[ -f "$home.tmp/quarkus-run.jar" ]] || stack_die "registry: quarkus-run.jar not found in $archive"
  rm -rf "$home" "$tmp"
  mv "$home.tmp" "$home"
  : >"$home/.installed"
  stack_log "registry: installed"
}

_registry_ready() {
  curl -fsS -o /dev/null --max-time 2 "http://$REGISTRY_HOST:$REGISTRY_MGMT_PORT/health/ready" 2>/dev/null \
    && curl -fsS -o /dev/null --max-time 2 "$(_registry_url)/subjects" 2>/dev/null
}

registry_up() {
  local pid
  if pid="$(stack_pid_alive "$(_registry_pidfile)" "$REGISTRY_MARKER")"; then
    stack_log "registry: already running (pid $pid) at $(_registry_url)"
    return 0
  fi
  _registry_installed || stack_die "registry: not installed; run: scripts/stack.sh install registry"
  stack_need_cmd curl "Install curl (apt-get install -y curl); it is used for the readiness check."
  stack_check_port_free registry "$REGISTRY_HOST" "$REGISTRY_PORT"
  stack_check_port_free registry-management "$REGISTRY_HOST" "$REGISTRY_MGMT_PORT"
  local data java t0=$SECONDS
  data="$(_registry_data)"
  java="$(stack_java 21 REGISTRY_JAVA_HOME)"
  mkdir -p "$data" "$(_registry_dir)/tmp"
  stack_log "registry: starting at $(_registry_url) (log $(_registry_logfile))"
  # shellcheck disable=SC2086  # heap options are a word list
  stack_spawn "$(_registry_pidfile)" "$(_registry_logfile)" \
    "$java" $REGISTRY_HEAP_OPTS "$REGISTRY_MARKER" \
    -XX:+UseG1GC -Djava.awt.headless=true \
    -Djava.util.logging.manager=org.jboss.logmanager.LogManager \
    -Dquarkus.http.host="$REGISTRY_HOST" -Dquarkus.http.port="$REGISTRY_PORT" \
    -Dquarkus.management.host="$REGISTRY_HOST" -Dquarkus.management.port="$REGISTRY_MGMT_PORT" \
    -Dapicurio.storage.kind=sql -Dapicurio.storage.sql.kind=h2 \
    -Dapicurio.datasource.url="jdbc:h2:file:$data/registry" \
    -Dapicurio.rules.global.compatibility="$REGISTRY_DEFAULT_COMPATIBILITY" \
    -Dapicurio.storage.snapshot.location="$(_registry_dir)/tmp" \
    -Dapicurio.import.work-dir="$(_registry_dir)/tmp" \
    -Dquarkus.otel.sdk.disabled=true \
    -Dquarkus.http.access-log.enabled=false \
    -jar "$(_registry_home)/quarkus-run.jar"
  stack_wait_ready registry "$(_registry_pidfile)" "$REGISTRY_MARKER" "$(_registry_logfile)" \
    "$REGISTRY_START_TIMEOUT" _registry_ready
  stack_log "registry: ready at $(_registry_url) (pid $(<"$(_registry_pidfile)"), $((SECONDS - t0))s)"
}

registry_down() {
  stack_stop registry "$(_registry_pidfile)" "$REGISTRY_MARKER" "$REGISTRY_STOP_TIMEOUT"
}

registry_status() {
  local pid
  if pid="$(stack_pid_alive "$(_registry_pidfile)" "$REGISTRY_MARKER")"; then
    if _registry_ready; then
      printf 'registry  running  pid %-7s %s  data %s\n' "$pid" "$(_registry_url)" "$(_registry_data)"
      return 0
    fi
    printf 'registry  starting pid %-7s (not ready yet; log %s)\n' "$pid" "$(_registry_logfile)"
    return 1
  fi
  if _registry_installed; then
    printf 'registry  stopped  (installed Apicurio Registry %s)\n' "$REGISTRY_VERSION"
  else
    printf 'registry  stopped  (not installed)\n'
  fi
  return 1
}

registry_env() {
  printf 'export SCHEMA_REGISTRY_URL=%s\n' "$(_registry_url)"
}

registry_logs() { _registry_logfile; }

registry_clean() {
  stack_log "registry: deleting data in $(_registry_data)"
  rm -rf "$(_registry_data)" "$(_registry_dir)/tmp"
}
