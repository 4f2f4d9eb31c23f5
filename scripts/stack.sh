#!/usr/bin/env bash
# Local test stack for logbridge: real servers on 127.0.0.1, installed from package
# registries by the project's own files, state under ${LOGBRIDGE_CACHE:-<repo>/.cache}.
#
#   scripts/stack.sh install [COMPONENT...]   install (idempotent; nothing is fetched twice)
#   scripts/stack.sh up      [COMPONENT...|all] start and wait until ready (installs if needed)
#   scripts/stack.sh down    [COMPONENT...|all] stop (SIGTERM, then SIGKILL after a timeout)
#   scripts/stack.sh restart [COMPONENT...|all] down + up; data is kept
#   scripts/stack.sh status  [COMPONENT...]   one line each; exit 0 only if all are running
#   scripts/stack.sh env     [COMPONENT...]   export lines for the clients: eval "$(scripts/stack.sh env)"
#   scripts/stack.sh logs    COMPONENT        path of the component's log file(s)
#   scripts/stack.sh clean   [COMPONENT...]   stop and delete the component's data (keeps the install)
#   scripts/stack.sh exec    COMPONENT ARGS... component tools, e.g. exec kafka topics --list ...
#
# Components are the files scripts/stack.d/<name>.sh, taken in STACK_ORDER (then any others,
# alphabetically); down goes in reverse. A component file defines, for its <name>:
#   <name>_install   install into "$(stack_dir <name>)"; must be idempotent      (required)
#   <name>_up        start in the background, write the pid file, wait until ready (required)
#   <name>_down      stop; a no-op when not running                              (required)
#   <name>_status    print one line; return 0 if running and ready, else non-zero  (required)
#   <name>_env       print `export VAR=value` lines for clients                   (optional)
#   <name>_clean     delete its data (called after <name>_down)                   (optional)
#   <name>_logs      print its log file path(s)                                   (optional)
#   <name>_exec      run one of its tools: scripts/stack.sh exec <name> ARGS...   (optional)
# and may use the helpers below (stack_* functions). Versions and ports are pinned in
# scripts/stack.versions, the one place to change them.
set -euo pipefail

STACK_SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STACK_REPO="$(cd "$STACK_SCRIPTS/.." && pwd)"
STACK_CACHE="${LOGBRIDGE_CACHE:-$STACK_REPO/.cache}"
# start order; components not listed here come after, alphabetically
STACK_ORDER="${STACK_ORDER:-kafka registry registry-auth mongo}"

# shellcheck source=stack.versions
source "$STACK_SCRIPTS/stack.versions"

# ---------------------------------------------------------------- helpers --

stack_log() { printf '[stack] %s\n' "$*" >&2; }
stack_die() { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }

# stack_dir NAME: the component's cache directory (created)
stack_dir() { mkdir -p "$STACK_CACHE/$1"; printf '%s\n' "$STACK_CACHE/$1"; }

# stack_need_cmd CMD HINT
stack_need_cmd() {
  command -v "$1" >/dev/null 2>&1 || stack_die "'$1' not found on PATH. $2"
}

# _stack_java_major JAVA: its feature version (17, 21, 25, ...)
_stack_java_major() {
  "$1" -XshowSettings:properties -version 2>&1 \
    | awk -F'= ' '/java.specification.version/ {split($2, v, "."); print (v[1] == "1" ? v[2] : v[1]); exit}'
}

# stack_java [MIN] [HOME_VAR]: path of a java whose version is >= MIN (default 17). Looks at
# ${HOME_VAR} if given and set (e.g. REGISTRY_JAVA_HOME), then JAVA_HOME, java on PATH, and
# the JDKs in /usr/lib/jvm (newest first).
stack_java() {
  local min="${1:-17}" home_var="${2:-}" j major cands=()
  if [[ -n "$home_var" && -n "${!home_var:-}" ]]; then
    [[ -x "${!home_var}/bin/java" ]] || stack_die "$home_var=${!home_var} has no bin/java"
    cands+=("${!home_var}/bin/java")   # an explicit choice: the only candidate
  else
    [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]] && cands+=("$JAVA_HOME/bin/java")
    j="$(command -v java || true)"; [[ -n "$j" ]] && cands+=("$j")
    # shellcheck disable=SC2012  # plain JDK directory names
    while IFS= read -r j; do cands+=("$j"); done \
      < <(ls -d /usr/lib/jvm/*/bin/java 2>/dev/null | sort -rV)
  fi
  for j in "${cands[@]}"; do
    major="$(_stack_java_major "$j" || true)"
    if [[ "$major" =~ ^[0-9]+$ ]] && ((major >= min)); then
      printf '%s\n' "$j"
      return 0
    fi
  done
  if [[ -n "$home_var" && -n "${!home_var:-}" ]]; then
    stack_die "$home_var=${!home_var} is Java '${major:-?}'; this needs Java >= $min. Point $home_var at a newer JDK, or unset it."
  fi
  stack_die "no Java >= $min found (looked at \$JAVA_HOME, PATH, /usr/lib/jvm). Install a JDK >= $min${home_var:+ or set $home_var to one}."
}

# stack_mvn ARGS...: batch-mode maven with clear failure
stack_mvn() {
  stack_need_cmd mvn "Install Maven (apt-get update && apt-get install -y maven)."
  # -q still prints bare ANSI resets; strip them (pipefail keeps maven's exit status)
  if ! mvn -B -q -ntp -Dstyle.color=never "$@" 2>&1 \
      | sed -e 's/\x1b\[[0-9;]*m//g' -e '/^[[:space:]]*$/d' >&2; then
    stack_die "maven failed: mvn $* -- check network access to Maven Central and ~/.m2/settings.xml."
  fi
}

# stack_port_open HOST PORT: true if something accepts TCP connections there
stack_port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# stack_pid_alive PIDFILE MARKER: prints the pid and returns 0 if the pid in PIDFILE is
# alive and its command line contains MARKER (guards against a recycled pid)
stack_pid_alive() {
  local pidfile="$1" marker="$2" pid
  [[ -s "$pidfile" ]] || return 1
  pid="$(<"$pidfile")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$marker" || return 1
  printf '%s\n' "$pid"
}

# stack_spawn PIDFILE LOGFILE CMD...: start CMD detached (own session, no tty, stdin
# closed), stdout+stderr appended to LOGFILE (the previous log is kept as LOGFILE.1)
stack_spawn() {
  local pidfile="$1" logfile="$2"; shift 2
  [[ -f "$logfile" ]] && mv -f "$logfile" "$logfile.1"
  : >"$logfile"
  # 9>&-: the server must not inherit the stack lock, or the next
  # up/down would wait on it forever.
  if command -v setsid >/dev/null 2>&1; then
    nohup setsid "$@" </dev/null >>"$logfile" 2>&1 9>&- &
  else
    nohup "$@" </dev/null >>"$logfile" 2>&1 9>&- &
  fi
  printf '%s\n' "$!" >"$pidfile"
}

# stack_wait_ready NAME PIDFILE MARKER LOGFILE TIMEOUT CHECK...: poll CHECK (a command)
# until it succeeds; fail fast with the log's tail if the process dies or time runs out
stack_wait_ready() {
  local name="$1" pidfile="$2" marker="$3" logfile="$4" timeout="$5"; shift 5
  local deadline=$((SECONDS + timeout))
  while ! "$@"; do
    # During startup only the pid's existence counts: right after the spawn
    # the child may not have exec'd yet, so its command line lacks the marker.
    if ! kill -0 "$(<"$pidfile")" 2>/dev/null; then
      printf '[stack] --- last lines of %s ---\n' "$logfile" >&2
      tail -n 40 "$logfile" >&2 || true
      rm -f "$pidfile"
      stack_die "$name exited during startup; see $logfile"
    fi
    if ((SECONDS >= deadline)); then
      printf '[stack] --- last lines of %s ---\n' "$logfile" >&2
      tail -n 40 "$logfile" >&2 || true
      stack_die "$name not ready after ${timeout}s (still running, pid $(<"$pidfile")); see $logfile, or raise the *_START_TIMEOUT in scripts/stack.versions"
    fi
    sleep 0.5
  done
}

# stack_stop NAME PIDFILE MARKER TIMEOUT: SIGTERM, wait up to TIMEOUT s, then SIGKILL
stack_stop() {
  local name="$1" pidfile="$2" marker="$3" timeout="$4" pid
  if ! pid="$(stack_pid_alive "$pidfile" "$marker")"; then
    rm -f "$pidfile"
    stack_log "$name: not running"
    return 0
  fi
  stack_log "$name: stopping (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + timeout))
  while kill -0 "$pid" 2>/dev/null; do
    if ((SECONDS >= deadline)); then
      stack_log "$name: still running after ${timeout}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 1
      break
    fi
    sleep 0.2
  done
  rm -f "$pidfile"
  stack_log "$name: stopped"
}

# stack_check_port_free NAME HOST PORT: refuse to start over somebody else's listener
stack_check_port_free() {
  if stack_port_open "$2" "$3"; then
    stack_die "$1: $2:$3 is already in use by another process (not started by this script). Stop it, or change the port in scripts/stack.versions."
  fi
}

# ------------------------------------------------------------- components --

STACK_COMPONENTS=()
_stack_load_components() {
  local f name listed=()
  shopt -s nullglob
  for name in $STACK_ORDER; do
    [[ -f "$STACK_SCRIPTS/stack.d/$name.sh" ]] && listed+=("$name")
  done
  STACK_COMPONENTS=("${listed[@]}")
  for f in "$STACK_SCRIPTS"/stack.d/*.sh; do
    name="$(basename "$f" .sh)"
    [[ " ${listed[*]} " == *" $name "* ]] || STACK_COMPONENTS+=("$name")
  done
  shopt -u nullglob
  for name in "${STACK_COMPONENTS[@]}"; do
    # shellcheck disable=SC1090
    source "$STACK_SCRIPTS/stack.d/$name.sh"
    local fn
    for fn in install up down status; do
      declare -F "${name}_$fn" >/dev/null \
        || stack_die "scripts/stack.d/$name.sh does not define ${name}_$fn"
    done
  done
}

# _stack_select ARGS...: sets STACK_SELECTED to the components named (all for none or
# 'all'), in start order
STACK_SELECTED=()
_stack_select() {
  local want=() c a found
  STACK_SELECTED=()
  if (($# == 0)) || [[ "$*" == "all" ]]; then
    STACK_SELECTED=("${STACK_COMPONENTS[@]}")
    return
  fi
  for a in "$@"; do
    found=0
    for c in "${STACK_COMPONENTS[@]}"; do [[ "$c" == "$a" ]] && found=1; done
    ((found)) || stack_die "unknown component '$a' (known: ${STACK_COMPONENTS[*]} all)"
    want+=("$a")
  done
  for c in "${STACK_COMPONENTS[@]}"; do
    [[ " ${want[*]} " == *" $c "* ]] && STACK_SELECTED+=("$c")
  done
  return 0
}

_stack_reverse() { local i; for ((i = $# ; i > 0 ; i--)); do printf '%s\n' "${!i}"; done; }

_stack_usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
  printf 'components: %s\n' "${STACK_COMPONENTS[*]}"
}

main() {
  _stack_load_components
  local cmd="${1:-help}"
  (($#)) && shift
  local sel=() c rc=0
  case "$cmd" in
    install|up|down|restart|status|env|clean)
      _stack_select "$@"
      sel=("${STACK_SELECTED[@]}")
      [[ ${#sel[@]} -gt 0 ]] || stack_die "no components found in $STACK_SCRIPTS/stack.d"
      ;;
  esac
  mkdir -p "$STACK_CACHE"
  case "$cmd" in
    install|up|down|restart|clean)
      # One change of the stack at a time: two concurrent `up`s must
      # never start two brokers on one data directory.
      exec 9>"$STACK_CACHE/stack.lock"
      flock 9 ;;
  esac
  case "$cmd" in
    install)
      for c in "${sel[@]}"; do "${c}_install"; done ;;
    up)
      for c in "${sel[@]}"; do "${c}_install"; done
      for c in "${sel[@]}"; do "${c}_up"; done ;;
    down)
      for c in $(_stack_reverse "${sel[@]}"); do "${c}_down"; done ;;
    restart)
      for c in $(_stack_reverse "${sel[@]}"); do "${c}_down"; done
      for c in "${sel[@]}"; do "${c}_up"; done ;;
    status)
      for c in "${sel[@]}"; do "${c}_status" || rc=3; done
      return "$rc" ;;
    env)
      for c in "${sel[@]}"; do
        if declare -F "${c}_env" >/dev/null; then "${c}_env"; fi
      done ;;
    clean)
      for c in $(_stack_reverse "${sel[@]}"); do
        "${c}_down"
        if declare -F "${c}_clean" >/dev/null; then "${c}_clean"; fi
      done ;;
    logs)
      [[ $# -eq 1 ]] || stack_die "usage: $0 logs COMPONENT"
      _stack_select "$1"
      if declare -F "${1}_logs" >/dev/null; then "${1}_logs"; else printf '%s\n' "$STACK_CACHE/$1"; fi ;;
    exec)
      [[ $# -ge 1 ]] || stack_die "usage: $0 exec COMPONENT ARGS..."
      _stack_select "$1"
      c="$1"; shift
      declare -F "${c}_exec" >/dev/null || stack_die "component '$c' has no exec command"
      "${c}_exec" "$@" ;;
    help|-h|--help)
      _stack_usage ;;
    *)
      _stack_usage >&2
      stack_die "unknown command '$cmd'" ;;
  esac
}

main "$@"
