# shellcheck shell=bash
# Component "mongo" of scripts/stack.sh: two independent MongoDB-wire-compatible servers,
#   source       on ${MONGO_HOST}:${MONGO_SOURCE_PORT}  (default: mongoshim in front of mongo-java-server)
#   destination  on ${MONGO_HOST}:${MONGO_DEST_PORT}    (default: mongoshim in front of mongo-java-server)
# No genuine mongod can be installed here; docs/testing.md has the conformance table that
# chose these two, and the list of what they lack (tests skip those with a reason).
#
# Programs (MONGO_SOURCE_SERVER / MONGO_DEST_SERVER pick one per role):
#   mongo-java-server  de.bwaldvogel:mongo-java-server (Maven Central, deploy/local/mongo/
#                      mongo-java-server/pom.xml) run by the small launcher in that folder,
#                      compiled here with javac: wire version 13, oplog on (change streams),
#                      optional replica-set shim (setName) for the source role.
#   jongodb            @jongodb/memory-server-bin-linux-x64-gnu (npm, deploy/local/mongo/
#                      jongodb/package.json): GraalVM native binary, in-memory.
#   nx-27017           nx-27017 (PyPI, deploy/local/mongo/nx-27017/requirements.txt) in a
#                      venv: SQLite-backed, data under <cache>/mongo/data/<role>.
#   mongoshim          tests/mongoshim (built here with `go build` into <cache>/mongo/mongoshim
#                      whenever its sources change): a test-only replica-set shim that fronts
#                      a mongo-java-server and adds what it lacks (single-member replica set
#                      hello, cluster time, sessions, transactions, cluster-wide change streams
#                      in the documented format, setUserWriteBlockMode, find min/max). With
#                      MONGO_SHIM=1 (default) every mongo-java-server role runs the Java server
#                      on an internal port (MONGO_*_BACKEND_PORT) and the shim on the role's port.
# Everything lands in <cache>/mongo/ (<cache> = ${LOGBRIDGE_CACHE:-<repo>/.cache}).
# Clients: eval "$(scripts/stack.sh env mongo)" gives SOURCE_URI and DEST_URI.
#
# Extra settings (environment; MONGO_HOST/MONGO_*_PORT come from scripts/stack.versions):
#   MONGO_SOURCE_SERVER=mongo-java-server  MONGO_DEST_SERVER=mongo-java-server (or jongodb, nx-27017)
#   MONGO_SHIM=1                   1: mongoshim in front of each mongo-java-server role; 0: the
#                                  Java server alone on the role's port (its launcher's setName shim
#                                  for the source, as before)
#   MONGO_SOURCE_BACKEND_PORT=27118  MONGO_DEST_BACKEND_PORT=27119   mongo-java-server behind the shim
#                                  (defaults in scripts/stack.versions, outside the ephemeral range)
#   MONGO_REPL_SET_NAME=rs0        setName the source presents (mongoshim, or the launcher's shim)
#   MONGO_DEST_REPL_SET_NAME=rs1   setName the destination's mongoshim presents
#   MONGO_SHIM_LOG_LEVEL=info      debug | info | warn | error
#   MONGO_OPLOG_MAX_EVENTS=300000  change events each mongoshim keeps in memory (its oplog; the
#                                  oldest are trimmed like a capped oplog's; 0 = unlimited, which
#                                  grew a long-lived shim to 13 GiB after a few benchmark runs, until the OOM killer ended it)
#   MONGO_MJS_BACKEND=memory       memory | h2 (h2 keeps data in <cache>/mongo/data/<role>/mongo.mv):
#                                  the default of the two per-role settings below
#   MONGO_SOURCE_MJS_BACKEND=memory  MONGO_DEST_MJS_BACKEND=h2   per role (docs/testing.md says why the
#                                  destination persists: the e2e suite stops and restarts it). Behind the
#                                  shim an h2 role's shim gets --rename-by-copy (h2's own rename is broken)
#                                  and --state-file <cache>/mongo/data/<role>/shim-state.bson (cluster-time
#                                  lease, collection UUIDs/options survive a restart)
#   MONGO_MJS_VERSION=1.47.0  MONGO_JONGODB_VERSION=0.1.6  MONGO_NX_VERSION=0.8.1
#   MONGO_INSTALL_ALL=1            mongo_install installs every candidate, not just the two
#   POPPYDB_VERSION=x.y.z          also try de.caluga:poppydb:<v>:jar:cli (not on Maven Central
#                                  as of 2026-11; see docs/testing.md)
#   MONGO_START_TIMEOUT=60  MONGO_STOP_TIMEOUT=20
#   MONGO_JAVA_HEAP=4g             heap of each mongo-java-server (in-memory data lives there:
#                                  a 5-minute lag run of `make bench` writes ~0.7M ~1 KiB
#                                  documents; with 2g the source ran out of heap)
#   MONGO_JAVA_HOME                JDK for mongo-java-server (>= 17)

: "${MONGO_HOST:=127.0.0.1}"
: "${MONGO_SOURCE_PORT:=27018}"
: "${MONGO_DEST_PORT:=27019}"
: "${MONGO_SOURCE_SERVER:=mongo-java-server}"
: "${MONGO_DEST_SERVER:=mongo-java-server}"
: "${MONGO_REPL_SET_NAME:=rs0}"
: "${MONGO_DEST_REPL_SET_NAME:=rs1}"
: "${MONGO_SHIM:=1}"
: "${MONGO_SOURCE_BACKEND_PORT:=27118}"
: "${MONGO_DEST_BACKEND_PORT:=27119}"
: "${MONGO_SHIM_LOG_LEVEL:=info}"
: "${MONGO_OPLOG_MAX_EVENTS:=300000}"
: "${MONGO_MJS_BACKEND:=memory}"
: "${MONGO_SOURCE_MJS_BACKEND:=$MONGO_MJS_BACKEND}"
: "${MONGO_DEST_MJS_BACKEND:=h2}"
: "${MONGO_MJS_VERSION:=1.47.0}"
: "${MONGO_JONGODB_VERSION:=0.1.6}"
: "${MONGO_NX_VERSION:=0.8.1}"
: "${MONGO_START_TIMEOUT:=60}"
: "${MONGO_STOP_TIMEOUT:=20}"
: "${STACK_MVN_DEPENDENCY_PLUGIN:=org.apache.maven.plugins:maven-dependency-plugin:3.8.1}"

MONGO_DEPLOY="$STACK_REPO/deploy/local/mongo"

_mongo_dir()      { stack_dir mongo; }
_mongo_mjs_dir()  { printf '%s/mongo-java-server-%s\n' "$(_mongo_dir)" "$MONGO_MJS_VERSION"; }
_mongo_jon_dir()  { printf '%s/jongodb-%s\n' "$(_mongo_dir)" "$MONGO_JONGODB_VERSION"; }
_mongo_jon_bin()  { printf '%s/node_modules/@jongodb/memory-server-bin-linux-x64-gnu/bin/jongodb\n' "$(_mongo_jon_dir)"; }
_mongo_nx_dir()   { printf '%s/nx-27017-%s\n' "$(_mongo_dir)" "$MONGO_NX_VERSION"; }
_mongo_pidfile()  { printf '%s/%s.pid\n' "$(_mongo_dir)" "$1"; }
_mongo_logfile()  { printf '%s/%s.log\n' "$(_mongo_dir)" "$1"; }
_mongo_datadir()  { printf '%s/data/%s\n' "$(_mongo_dir)" "$1"; }
_mongo_port()     { if [[ "$1" == source ]]; then printf '%s\n' "$MONGO_SOURCE_PORT"; else printf '%s\n' "$MONGO_DEST_PORT"; fi; }
_mongo_server()   { if [[ "$1" == source ]]; then printf '%s\n' "$MONGO_SOURCE_SERVER"; else printf '%s\n' "$MONGO_DEST_SERVER"; fi; }
_mongo_backend_port() { if [[ "$1" == source ]]; then printf '%s\n' "$MONGO_SOURCE_BACKEND_PORT"; else printf '%s\n' "$MONGO_DEST_BACKEND_PORT"; fi; }
_mongo_mjs_backend() { if [[ "$1" == source ]]; then printf '%s\n' "$MONGO_SOURCE_MJS_BACKEND"; else printf '%s\n' "$MONGO_DEST_MJS_BACKEND"; fi; }
_mongo_set_name() { if [[ "$1" == source ]]; then printf '%s\n' "$MONGO_REPL_SET_NAME"; else printf '%s\n' "$MONGO_DEST_REPL_SET_NAME"; fi; }
_mongo_shim_bin()     { printf '%s/mongoshim\n' "$(_mongo_dir)"; }
_mongo_shim_pidfile() { printf '%s/%s-shim.pid\n' "$(_mongo_dir)" "$1"; }
_mongo_shim_logfile() { printf '%s/%s-shim.log\n' "$(_mongo_dir)" "$1"; }
_mongo_shim_marker()  { printf -- '--listen %s:%s\n' "$MONGO_HOST" "$1"; }
_mongo_shim_state()   { printf '%s/shim-state.bson\n' "$(_mongo_datadir "$1")"; }

# _mongo_configured ROLE: "KIND PORT SHIM BACKEND_PORT STORE" as configured now. SHIM is
# "shim" when mongoshim fronts the server (then the server listens on BACKEND_PORT, the shim
# on PORT) and "-" otherwise (the server listens on PORT; BACKEND_PORT = PORT). STORE is
# mongo-java-server's back end (memory or h2), "-" for the other servers.
_mongo_configured() {
  local kind port store=-
  kind="$(_mongo_server "$1")"
  port="$(_mongo_port "$1")"
  if [[ "$kind" == mongo-java-server ]]; then
    store="$(_mongo_mjs_backend "$1")"
    [[ "$store" == memory || "$store" == h2 ]] || stack_die "mongo: MONGO_*_MJS_BACKEND must be memory or h2, not '$store' ($1)"
  fi
  if [[ "$MONGO_SHIM" == 1 && "$kind" == mongo-java-server ]]; then
    printf '%s %s shim %s %s\n' "$kind" "$port" "$(_mongo_backend_port "$1")" "$store"
  else
    printf '%s %s - %s %s\n' "$kind" "$port" "$port" "$store"
  fi
}

# _mongo_running_server ROLE: "KIND PORT SHIM BACKEND_PORT STORE" a running ROLE was started
# with (from <role>.server, written by mongo_up), else the configured ones; so down/status
# find a server started with other MONGO_*_SERVER/PORT/SHIM settings than the current ones
_mongo_running_server() {
  local f kind port shim bport store
  f="$(_mongo_dir)/$1.server"
  if [[ -s "$f" ]] && [[ -s "$(_mongo_pidfile "$1")" || -s "$(_mongo_shim_pidfile "$1")" ]]; then
    read -r kind port shim bport store <"$f"
    printf '%s %s %s %s %s\n' "$kind" "$port" "${shim:--}" "${bport:-$port}" "${store:--}"
  else
    _mongo_configured "$1"
  fi
}

# _mongo_marker ROLE [KIND PORT]: a string on the server's command line that identifies it
# (pid checks)
_mongo_marker() {
  local role="$1" kind="${2:-}" port="${3:-}"
  [[ -n "$kind" ]] || read -r kind _ _ port _ < <(_mongo_running_server "$role")
  case "$kind" in
    mongo-java-server) printf -- '-Dlogbridge.stack=mongo-%s\n' "$role" ;;
    # both reject unknown arguments: mark them with arguments they take
    jongodb)           printf -- '--port=%s --database=logbridge_%s\n' "$port" "$role" ;;
    nx-27017)          printf -- '--data-dir %s\n' "$(_mongo_datadir "$role")" ;;
  esac
}

# ------------------------------------------------------------------ install --

_mongo_mjs_installed() { [[ -f "$(_mongo_mjs_dir)/.installed" ]]; }
_mongo_jon_installed() { [[ -f "$(_mongo_jon_dir)/.installed" && -x "$(_mongo_jon_bin)" ]]; }
_mongo_nx_installed()  { [[ -f "$(_mongo_nx_dir)/.installed" && -x "$(_mongo_nx_dir)/venv/bin/nx-27017" ]]; }

_mongo_install_mjs() {
  local dir
  dir="$(_mongo_mjs_dir)"
  if _mongo_mjs_installed; then
    stack_log "mongo: mongo-java-server $MONGO_MJS_VERSION already installed in $dir"
    _mongo_build_launcher   # a running server keeps its classes until restarted
    return 0
  fi
  _mongo_javac >/dev/null   # before the download: fail early without a JDK
  stack_log "mongo: installing mongo-java-server $MONGO_MJS_VERSION from Maven Central into $dir"
  rm -rf "$dir.tmp"
  mkdir -p "$dir.tmp"
  stack_mvn -f "$MONGO_DEPLOY/mongo-java-server/pom.xml" \
    "$STACK_MVN_DEPENDENCY_PLUGIN:copy-dependencies" \
    -Dmongo-java-server.version="$MONGO_MJS_VERSION" -DoutputDirectory="$dir.tmp/lib"
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
  _mongo_build_launcher
  : >"$dir/.installed"
  stack_log "mongo: mongo-java-server installed"
}

_mongo_install_jongodb() {
  local dir
  dir="$(_mongo_jon_dir)"
  if _mongo_jon_installed; then
    stack_log "mongo: jongodb $MONGO_JONGODB_VERSION already installed in $dir"
    return 0
  fi
  stack_need_cmd npm "Install Node.js and npm (apt-get update && apt-get install -y npm)."
  stack_log "mongo: installing jongodb $MONGO_JONGODB_VERSION from npm into $dir"
  rm -rf "$dir.tmp"
  mkdir -p "$dir.tmp"
  sed -e "s/\"@jongodb\/memory-server-bin-linux-x64-gnu\": \"[^\"]*\"/\"@jongodb\/memory-server-bin-linux-x64-gnu\": \"$MONGO_JONGODB_VERSION\"/" \
    "$MONGO_DEPLOY/jongodb/package.json" >"$dir.tmp/package.json"
  (cd "$dir.tmp" && npm install --no-audit --no-fund --omit=dev --loglevel=error >&2) \
    || stack_die "mongo: npm install of jongodb failed (see above); check access to the npm registry"
  rm -rf "$dir"
  mv "$dir.tmp" "$dir"
  [[ -x "$(_mongo_jon_bin)" ]] || stack_die "mongo: $(_mongo_jon_bin) missing after npm install (the binary package is linux-x64-gnu only)"
  : >"$dir/.installed"
  stack_log "mongo: jongodb installed"
}

_mongo_install_nx() {
  local dir py
  dir="$(_mongo_nx_dir)"
  if _mongo_nx_installed; then
    stack_log "mongo: nx-27017 $MONGO_NX_VERSION already installed in $dir"
    return 0
  fi
  py="$(command -v python3 || true)"
  [[ -n "$py" ]] || stack_die "mongo: python3 not found; install Python 3.11+ (apt-get install -y python3 python3-venv)"
  stack_log "mongo: installing nx-27017 $MONGO_NX_VERSION from PyPI into $dir"
  # a venv embeds its path, so it is built in place; .installed marks it complete
  rm -rf "$dir"
  mkdir -p "$dir"
  "$py" -m venv "$dir/venv" || stack_die "mongo: python3 -m venv failed (apt-get install -y python3-venv)"
  sed -e "s/^nx-27017==.*/nx-27017==$MONGO_NX_VERSION/" "$MONGO_DEPLOY/nx-27017/requirements.txt" >"$dir/requirements.txt"
  "$dir/venv/bin/pip" install -q --disable-pip-version-check -r "$dir/requirements.txt" >&2 \
    || stack_die "mongo: pip install nx-27017 failed (see above); check access to PyPI"
  : >"$dir/.installed"
  stack_log "mongo: nx-27017 installed"
}

_mongo_try_poppydb() {
  [[ -n "${POPPYDB_VERSION:-}" ]] || return 0
  local dir
  dir="$(_mongo_dir)/poppydb-$POPPYDB_VERSION"
  [[ -f "$dir/.installed" ]] && return 0
  stack_log "mongo: trying de.caluga:poppydb:$POPPYDB_VERSION:jar:cli from Maven Central"
  if mvn -B -q -ntp -f "$MONGO_DEPLOY/poppydb/pom.xml" "$STACK_MVN_DEPENDENCY_PLUGIN:copy-dependencies" \
      -Dpoppydb.version="$POPPYDB_VERSION" -DoutputDirectory="$dir" >/dev/null 2>&1; then
    : >"$dir/.installed"
    stack_log "mongo: PoppyDB $POPPYDB_VERSION resolved into $dir (not wired into mongo_up; see docs/testing.md)"
  else
    stack_log "mongo: PoppyDB $POPPYDB_VERSION is not resolvable from Maven Central; skipped"
  fi
}

_mongo_install_kind() {
  case "$1" in
    mongo-java-server) _mongo_install_mjs ;;
    jongodb)           _mongo_install_jongodb ;;
    nx-27017)          _mongo_install_nx ;;
    *) stack_die "mongo: unknown server '$1' (MONGO_SOURCE_SERVER/MONGO_DEST_SERVER: mongo-java-server, jongodb, nx-27017)" ;;
  esac
}

# _mongo_javac: the javac beside the JDK that runs mongo-java-server, else the one on PATH
_mongo_javac() {
  local java javac
  java="$(stack_java 17 MONGO_JAVA_HOME)"
  javac="$(dirname "$java")/javac"
  [[ -x "$javac" ]] || javac="$(command -v javac || true)"
  [[ -n "$javac" && -x "$javac" ]] || stack_die "mongo: javac not found next to $java nor on PATH; install a JDK (apt-get install -y openjdk-17-jdk-headless) or set MONGO_JAVA_HOME"
  printf '%s\n' "$javac"
}

# _mongo_build_launcher: compile the launcher into <mjs dir>/classes when its source changed
# since the last build (at install, and after an edit; the installed jars stay)
_mongo_build_launcher() {
  local dir src h javac
  dir="$(_mongo_mjs_dir)"
  src="$MONGO_DEPLOY/mongo-java-server/LogbridgeMongoJavaServer.java"
  h="$(sha256sum "$src" | cut -d' ' -f1)"
  [[ -f "$dir/classes.stamp" && "$(<"$dir/classes.stamp")" == "$h" ]] && return 0
  javac="$(_mongo_javac)"
  stack_log "mongo: compiling the mongo-java-server launcher"
  rm -rf "$dir/classes.tmp"
  mkdir -p "$dir/classes.tmp"
  "$javac" -nowarn -d "$dir/classes.tmp" -cp "$dir/lib/*" "$src" || stack_die "mongo: compiling the mongo-java-server launcher failed"
  rm -rf "$dir/classes"
  mv "$dir/classes.tmp" "$dir/classes"
  printf '%s\n' "$h" >"$dir/classes.stamp"
}

# _mongo_shim_hash: a hash of everything the shim binary is built from
_mongo_shim_hash() {
  (cd "$STACK_REPO" && {
    cat go.mod go.sum
    find tests/mongoshim pkg/verify -name '*.go' ! -name '*_test.go' -print0 | sort -z | xargs -0 cat
  } | sha256sum | cut -d' ' -f1)
}

# _mongo_build_shim: go build tests/mongoshim/cmd/mongoshim into the cache when its sources
# changed since the last build (a running shim keeps its old binary until restarted)
_mongo_build_shim() {
  local bin h
  bin="$(_mongo_shim_bin)"
  h="$(_mongo_shim_hash)"
  if [[ -x "$bin" && -f "$bin.stamp" && "$(<"$bin.stamp")" == "$h" ]]; then
    return 0
  fi
  stack_need_cmd go "Install Go: the replica-set shim is built from tests/mongoshim (or set MONGO_SHIM=0)."
  stack_log "mongo: building the replica-set shim (tests/mongoshim) into $bin"
  (cd "$STACK_REPO" && go build -o "$bin.tmp" ./tests/mongoshim/cmd/mongoshim) \
    || stack_die "mongo: go build ./tests/mongoshim/cmd/mongoshim failed (see above); MONGO_SHIM=0 runs without the shim"
  mv -f "$bin.tmp" "$bin"
  printf '%s\n' "$h" >"$bin.stamp"
}

_mongo_shim_wanted() {
  local role
  for role in source destination; do
    [[ "$(_mongo_configured "$role" | cut -d' ' -f3)" == shim ]] && return 0
  done
  return 1
}

mongo_install() {
  local kinds="$MONGO_SOURCE_SERVER $MONGO_DEST_SERVER" k done_kinds=" "
  [[ "${MONGO_INSTALL_ALL:-0}" == 1 ]] && kinds="mongo-java-server jongodb nx-27017"
  for k in $kinds; do
    [[ "$done_kinds" == *" $k "* ]] && continue
    _mongo_install_kind "$k"
    done_kinds+="$k "
  done
  if _mongo_shim_wanted; then _mongo_build_shim; fi
  _mongo_try_poppydb
}

# ---------------------------------------------------------------- up/down --

_mongo_port_ready() { stack_port_open "$MONGO_HOST" "$1"; }

# _mongo_wait_marker PIDFILE MARKER: stack_wait_ready takes a server for dead when its
# command line lacks the marker; right after the spawn it may still be nohup/setsid
# mid-exec (empty or other cmdline), which would orphan a healthy server. Wait (<= 3s)
# until the marker shows or the pid is gone.
_mongo_wait_marker() {
  local i
  for ((i = 0; i < 30; i++)); do
    stack_pid_alive "$1" "$2" >/dev/null && break
    kill -0 "$(<"$1")" 2>/dev/null || break
    sleep 0.1
  done
}

_mongo_up_role() {
  local role="$1" kind port shim bport store pidfile logfile marker pid t0=$SECONDS
  read -r kind port shim bport store < <(_mongo_configured "$role")
  pidfile="$(_mongo_pidfile "$role")"
  logfile="$(_mongo_logfile "$role")"
  local rkind rport rshim rbport rstore
  read -r rkind rport rshim rbport rstore < <(_mongo_running_server "$role")
  if pid="$(stack_pid_alive "$pidfile" "$(_mongo_marker "$role" "$rkind" "$rbport")")"; then
    if [[ "$rstore" == - && "$store" != - ]]; then
      # started by a stack.sh that did not record the back end: keep it running as it is
      stack_log "mongo-$role: running with a back end this script did not record; \`scripts/stack.sh restart mongo\` applies the configured one ($store)"
      store=-   # recorded as unknown again
    fi
    if [[ "$rkind $rport $rshim $rbport $rstore" != "$kind $port $shim $bport $store" ]]; then
      stack_die "mongo-$role: $rkind is running on port $rport (shim: $rshim, back end: $rstore, pid $pid), not the configured $kind on $port (shim: $shim, back end: $store); run: scripts/stack.sh down mongo"
    fi
    stack_log "mongo-$role: already running ($kind, pid $pid) at $MONGO_HOST:$bport"
  else
    if [[ "$shim" == shim && -s "$(_mongo_shim_pidfile "$role")" ]]; then
      # a shim left without its server is useless: stop it first
      stack_stop "mongo-$role-shim" "$(_mongo_shim_pidfile "$role")" "$(_mongo_shim_marker "$port")" "$MONGO_STOP_TIMEOUT"
    fi
    _mongo_up_server "$role" "$kind" "$bport" "$shim" "$store"
  fi
  printf '%s %s %s %s %s\n' "$kind" "$port" "$shim" "$bport" "$store" >"$(_mongo_dir)/$role.server"
  if [[ "$shim" == shim ]]; then
    _mongo_up_shim "$role" "$port" "$bport" "$store"
  fi
  stack_log "mongo-$role: ready at $MONGO_HOST:$port ($([[ $shim == shim ]] && printf 'mongoshim -> ')$kind$([[ $store != - ]] && printf ', %s back end' "$store")) ($((SECONDS - t0))s)"
}

# _mongo_up_server ROLE KIND PORT SHIM STORE: start the server program on PORT
_mongo_up_server() {
  local role="$1" kind="$2" port="$3" shim="$4" store="$5" pidfile logfile marker
  pidfile="$(_mongo_pidfile "$role")"
  logfile="$(_mongo_logfile "$role")"
  marker="$(_mongo_marker "$role" "$kind" "$port")"
  stack_check_port_free "mongo-$role" "$MONGO_HOST" "$port"
  case "$kind" in
    mongo-java-server)
      _mongo_mjs_installed || stack_die "mongo: mongo-java-server not installed; run: scripts/stack.sh install mongo"
      _mongo_build_launcher   # again when the launcher's source changed since the install
      local java dir args=()
      java="$(stack_java 17 MONGO_JAVA_HOME)"
      dir="$(_mongo_mjs_dir)"
      args=(--host "$MONGO_HOST" --port "$port" --backend "$store")
      if [[ "$store" == h2 ]]; then
        mkdir -p "$(_mongo_datadir "$role")"
        args+=(--data "$(_mongo_datadir "$role")/mongo.mv")
      fi
      # without the shim, the launcher's own setName shim makes the source pass as a replica set
      [[ "$shim" != shim && "$role" == source && -n "$MONGO_REPL_SET_NAME" ]] && args+=(--repl-set-name "$MONGO_REPL_SET_NAME")
      # behind the shim, change streams come from the shim: the backend's own oplog
      # would only hold every write a second time in the heap
      [[ "$shim" == shim ]] && args+=(--no-oplog)
      stack_log "mongo-$role: starting mongo-java-server at $MONGO_HOST:$port (log $logfile)"
      # 9>&-: the server must not inherit stack.sh's lock (fd 9), or it holds the lock for
      # its whole life and the next `scripts/stack.sh up` waits forever
      stack_spawn "$pidfile" "$logfile" "$java" "-Xmx${MONGO_JAVA_HEAP:-4g}" "$marker" -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
        -cp "$dir/lib/*:$dir/classes" LogbridgeMongoJavaServer "${args[@]}" 9>&-
      ;;
    jongodb)
      _mongo_jon_installed || stack_die "mongo: jongodb not installed; run: scripts/stack.sh install mongo"
      # standalone profile: its single-node replica-set profile rejects the $readPreference
      # the Go driver puts on its streaming hello (see docs/testing.md)
      stack_log "mongo-$role: starting jongodb at $MONGO_HOST:$port (log $logfile)"
      stack_spawn "$pidfile" "$logfile" "$(_mongo_jon_bin)" --host="$MONGO_HOST" \
        --port="$port" --database="logbridge_$role" 9>&-
      ;;
    nx-27017)
      _mongo_nx_installed || stack_die "mongo: nx-27017 not installed; run: MONGO_INSTALL_ALL=1 scripts/stack.sh install mongo"
      local data
      data="$(_mongo_datadir "$role")"
      mkdir -p "$data"
      stack_log "mongo-$role: starting nx-27017 at $MONGO_HOST:$port (data $data, log $logfile)"
      stack_spawn "$pidfile" "$logfile" "$(_mongo_nx_dir)/venv/bin/nx-27017" \
        --host "$MONGO_HOST" -p "$port" --data-dir "$data" \
        --log-file "$logfile.nx" --pid-file "$(_mongo_dir)/$role.nx.pid" 9>&-
      ;;
    *) stack_die "mongo: unknown server '$kind' for $role" ;;
  esac
  _mongo_wait_marker "$pidfile" "$marker"
  stack_wait_ready "mongo-$role" "$pidfile" "$marker" "$logfile" "$MONGO_START_TIMEOUT" _mongo_port_ready "$port"
  stack_log "mongo-$role: $kind listening at $MONGO_HOST:$port (pid $(<"$pidfile"))"
}

# _mongo_up_shim ROLE PORT BACKEND_PORT STORE: mongoshim on PORT in front of the server on
# BACKEND_PORT (with mongo-java-server's back end STORE)
_mongo_up_shim() {
  local role="$1" port="$2" bport="$3" store="$4" pidfile logfile marker pid extra=()
  pidfile="$(_mongo_shim_pidfile "$role")"
  logfile="$(_mongo_shim_logfile "$role")"
  marker="$(_mongo_shim_marker "$port")"
  if pid="$(stack_pid_alive "$pidfile" "$marker")"; then
    stack_log "mongo-$role-shim: already running (pid $pid) at $MONGO_HOST:$port"
    return 0
  fi
  _mongo_build_shim
  stack_check_port_free "mongo-$role-shim" "$MONGO_HOST" "$port"
  stack_log "mongo-$role-shim: starting mongoshim at $MONGO_HOST:$port -> $MONGO_HOST:$bport (log $logfile)"
  if [[ "$store" == h2 ]]; then
    # h2 renames collections wrongly (the shim copies instead), and the data outlives the
    # shim: keep its cluster-time lease and catalog next to the data
    mkdir -p "$(_mongo_datadir "$role")"
    extra=(--rename-by-copy --state-file "$(_mongo_shim_state "$role")")
  fi
  stack_spawn "$pidfile" "$logfile" "$(_mongo_shim_bin)" --listen "$MONGO_HOST:$port" \
    --backend "mongodb://$MONGO_HOST:$bport/?directConnection=true" \
    --set-name "$(_mongo_set_name "$role")" --log-level "$MONGO_SHIM_LOG_LEVEL" \
    --oplog-max-events "$MONGO_OPLOG_MAX_EVENTS" "${extra[@]}" 9>&-
  _mongo_wait_marker "$pidfile" "$marker"
  stack_wait_ready "mongo-$role-shim" "$pidfile" "$marker" "$logfile" "$MONGO_START_TIMEOUT" _mongo_port_ready "$port"
}

mongo_up() {
  if _mongo_shim_wanted; then _mongo_build_shim; fi
  _mongo_up_role source
  _mongo_up_role destination
}

# _mongo_down_role ROLE: stop ROLE's shim, then its server
_mongo_down_role() {
  local role="$1" kind port shim bport
  read -r kind port shim bport _ < <(_mongo_running_server "$role")
  # the shim first (it is the clients' end), then the server behind it; a shim pid
  # file is stopped whatever MONGO_SHIM says now
  if [[ "$shim" == shim || -s "$(_mongo_shim_pidfile "$role")" ]]; then
    stack_stop "mongo-$role-shim" "$(_mongo_shim_pidfile "$role")" "$(_mongo_shim_marker "$port")" "$MONGO_STOP_TIMEOUT"
  fi
  stack_stop "mongo-$role" "$(_mongo_pidfile "$role")" "$(_mongo_marker "$role" "$kind" "$bport")" "$MONGO_STOP_TIMEOUT"
}

mongo_down() {
  local role
  for role in destination source; do
    _mongo_down_role "$role"
    rm -f "$(_mongo_dir)/$role.server"
  done
}

_mongo_status_role() {
  local role="$1" kind port shim bport pid spid rc=0
  read -r kind port shim bport _ < <(_mongo_running_server "$role")
  if pid="$(stack_pid_alive "$(_mongo_pidfile "$role")" "$(_mongo_marker "$role" "$kind" "$bport")")"; then
    if ! stack_port_open "$MONGO_HOST" "$bport"; then
      printf 'mongo-%-12s starting pid %-7s (not ready yet; log %s)\n' "$role" "$pid" "$(_mongo_logfile "$role")"
      return 1
    fi
    if [[ "$shim" != shim ]]; then
      printf 'mongo-%-12s running  pid %-7s %s  %s\n' "$role" "$pid" "$(_mongo_uri "$role" "$kind" "$port" "$shim")" "$kind"
      return 0
    fi
    printf 'mongo-%-12s running  pid %-7s %s:%s  %s (behind mongoshim)\n' "$role" "$pid" "$MONGO_HOST" "$bport" "$kind$(_mongo_store_note "$role")"
  else
    printf 'mongo-%-12s stopped  (%s on port %s)\n' "$role" "$kind" "$bport"
    rc=1
  fi
  [[ "$shim" == shim ]] || return "$rc"
  if spid="$(stack_pid_alive "$(_mongo_shim_pidfile "$role")" "$(_mongo_shim_marker "$port")")"; then
    if stack_port_open "$MONGO_HOST" "$port"; then
      printf 'mongo-%-12s running  pid %-7s %s  mongoshim -> %s\n' "$role-shim" "$spid" "$(_mongo_uri "$role" "$kind" "$port" "$shim")" "$kind"
    else
      printf 'mongo-%-12s starting pid %-7s (not ready yet; log %s)\n' "$role-shim" "$spid" "$(_mongo_shim_logfile "$role")"
      rc=1
    fi
  else
    printf 'mongo-%-12s stopped  (mongoshim on port %s)\n' "$role-shim" "$port"
    rc=1
  fi
  return "$rc"
}

# _mongo_store_note ROLE: ", h2 back end" for a persistent mongo-java-server
_mongo_store_note() {
  local store
  read -r _ _ _ _ store < <(_mongo_running_server "$1")
  [[ "$store" == h2 ]] && printf ', h2 back end'
  return 0
}

mongo_status() {
  local rc=0
  _mongo_status_role source || rc=1
  _mongo_status_role destination || rc=1
  return "$rc"
}

# _mongo_uri ROLE [KIND PORT SHIM]: the URI the Go driver v2 uses for that role
_mongo_uri() {
  local role="$1" kind="${2:-}" port="${3:-}" shim="${4:-}"
  [[ -n "$kind" ]] || read -r kind port shim _ _ < <(_mongo_running_server "$role")
  if [[ "$shim" == shim ]]; then
    # the shim is a single-member replica set whose hosts list names exactly this address,
    # so the driver's replica-set discovery works
    printf 'mongodb://%s:%s/?replicaSet=%s\n' "$MONGO_HOST" "$port" "$(_mongo_set_name "$role")"
    return 0
  fi
  case "$kind" in
    mongo-java-server)
      if [[ "$role" == source && -n "$MONGO_REPL_SET_NAME" ]]; then
        printf 'mongodb://%s:%s/?replicaSet=%s&directConnection=true\n' "$MONGO_HOST" "$port" "$MONGO_REPL_SET_NAME"
      else
        printf 'mongodb://%s:%s/?directConnection=true\n' "$MONGO_HOST" "$port"
      fi ;;
    *) printf 'mongodb://%s:%s/?directConnection=true\n' "$MONGO_HOST" "$port" ;;
  esac
}

mongo_env() {
  printf "export SOURCE_URI='%s'\n" "$(_mongo_uri source)"
  printf "export DEST_URI='%s'\n" "$(_mongo_uri destination)"
  # which programs these are, so tests can skip what a program lacks (docs/testing.md)
  printf "export SOURCE_MONGO_SERVER='%s'\n" "$(_mongo_program source)"
  printf "export DEST_MONGO_SERVER='%s'\n" "$(_mongo_program destination)"
  # the backend ports of what runs (a stack started with other defaults keeps its own), for
  # tests that put a shim of their own in front of a backend
  local bport
  bport="$(_mongo_running_server source | cut -d' ' -f4)"
  [[ -n "$bport" && "$bport" != - ]] && printf "export MONGO_SOURCE_BACKEND_PORT='%s'\n" "$bport"
  bport="$(_mongo_running_server destination | cut -d' ' -f4)"
  [[ -n "$bport" && "$bport" != - ]] && printf "export MONGO_DEST_BACKEND_PORT='%s'\n" "$bport"
  return 0
}

# _mongo_program ROLE: what serves ROLE, e.g. "mongoshim+mongo-java-server"
_mongo_program() {
  local kind shim
  read -r kind _ shim _ _ < <(_mongo_running_server "$1")
  if [[ "$shim" == shim ]]; then printf 'mongoshim+%s\n' "$kind"; else printf '%s\n' "$kind"; fi
}

mongo_logs() {
  local role
  for role in source destination; do
    _mongo_logfile "$role"
    [[ -f "$(_mongo_shim_logfile "$role")" ]] && _mongo_shim_logfile "$role"
  done
  return 0
}

mongo_clean() {
  stack_log "mongo: deleting data in $(_mongo_dir)/data"
  rm -rf "$(_mongo_dir)/data"
}

# scripts/stack.sh exec mongo probe source|destination [probe flags...]
#   runs the conformance probe (tests/conformance/cmd/probe) against that role
mongo_exec() {
  local sub="${1:-}"
  case "$sub" in
    probe)
      local role="${2:-source}"
      [[ "$role" == source || "$role" == destination ]] || stack_die "usage: exec mongo probe source|destination [flags]"
      shift 2 || shift $#
      stack_need_cmd go "Install Go to run the probe."
      (cd "$STACK_REPO" && go run ./tests/conformance/cmd/probe --uri "$(_mongo_uri "$role")" \
        --name "$(_mongo_program "$role") ($role)" "$@")
      ;;
    uri)
      _mongo_uri "${2:-source}" ;;
    stop|start)
      # one role only (the e2e suite stops and starts the destination server); start
      # brings the role back as it last ran (<role>.server), whatever the environment says
      local role="${2:-}" f kind port shim bport store
      [[ "$role" == source || "$role" == destination ]] || stack_die "usage: scripts/stack.sh exec mongo $sub source|destination"
      exec 9>"$STACK_CACHE/stack.lock"
      flock 9
      f="$(_mongo_dir)/$role.server"
      if [[ "$sub" == stop ]]; then
        _mongo_down_role "$role"   # <role>.server stays: start reads it
        return 0
      fi
      if [[ -s "$f" ]]; then
        read -r kind port shim bport store <"$f"
        if [[ "$role" == source ]]; then
          MONGO_SOURCE_SERVER="$kind" MONGO_SOURCE_PORT="$port" MONGO_SOURCE_BACKEND_PORT="$bport"
          [[ "${store:--}" != - ]] && MONGO_SOURCE_MJS_BACKEND="$store"
        else
          MONGO_DEST_SERVER="$kind" MONGO_DEST_PORT="$port" MONGO_DEST_BACKEND_PORT="$bport"
          [[ "${store:--}" != - ]] && MONGO_DEST_MJS_BACKEND="$store"
        fi
        if [[ "$shim" == shim ]]; then MONGO_SHIM=1; else MONGO_SHIM=0; fi
      fi
      if [[ "$(_mongo_configured "$role" | cut -d' ' -f3)" == shim ]]; then _mongo_build_shim; fi
      _mongo_up_role "$role"
      ;;
    *) stack_die "usage: scripts/stack.sh exec mongo probe|uri|stop|start source|destination [flags]" ;;
  esac
}
