# shellcheck shell=bash
# Component "registry-auth" of scripts/stack.sh: nginx (Debian's package) as an authenticating
# HTTPS gateway in front of the "registry" component, on ${REGISTRY_AUTH_HOST}:${REGISTRY_AUTH_PORT}.
# Clients use SCHEMA_REGISTRY_AUTH_URL with the test credentials that registry_auth's env prints.
#
# Why a gateway: Apicurio's own authentication needs an OIDC server (Keycloak), and Karapace is
# not installable here; many shops expose their registry behind such a gateway. It accepts
#   - HTTP basic auth: $REGISTRY_AUTH_USER (read-write) and $REGISTRY_AUTH_READER_USER (GET and
#     HEAD only; anything else is 403), passwords in an htpasswd file (openssl passwd -apr1);
#   - a bearer token: "Authorization: Bearer $REGISTRY_AUTH_TOKEN" (read-write);
# over TLS with a certificate from a test CA generated once with openssl (<cache>/registry-auth/tls,
# ca.pem is SCHEMA_REGISTRY_AUTH_CA), and proxies to Apicurio without the Authorization header.
# Layout under <cache>/registry-auth: nginx.conf htpasswd tls/ tmp/ nginx.log access.log pid files.
# docs/testing.md, "Schema registry authentication".

REGISTRY_AUTH_DEPLOY="$STACK_REPO/deploy/local/registry-auth"

_registry_auth_dir()     { stack_dir registry-auth; }
_registry_auth_pidfile() { printf '%s/registry-auth.pid\n' "$(_registry_auth_dir)"; }
_registry_auth_logfile() { printf '%s/nginx.log\n' "$(_registry_auth_dir)"; }
_registry_auth_conf()    { printf '%s/nginx.conf\n' "$(_registry_auth_dir)"; }
_registry_auth_tls()     { printf '%s/tls\n' "$(_registry_auth_dir)"; }
_registry_auth_url()     { printf 'https://%s:%s/apis/ccompat/v7\n' "$REGISTRY_AUTH_HOST" "$REGISTRY_AUTH_PORT"; }
# the marker in nginx's command line (-c <conf>) that tells our process from any other nginx
_registry_auth_marker()  { _registry_auth_conf; }

# _registry_auth_nginx: the nginx binary (Debian installs it in /usr/sbin, which is not on
# every user's PATH)
_registry_auth_nginx() {
  local n
  n="$(command -v nginx 2>/dev/null || true)"
  [[ -z "$n" && -x /usr/sbin/nginx ]] && n=/usr/sbin/nginx
  [[ -n "$n" ]] || return 1
  printf '%s\n' "$n"
}

registry-auth_install() {
  # nginx comes from the machine's packages: installed here with apt-get when missing and we
  # may (root, apt-get present), so that `make demo` / `make test` on a fresh machine need
  # nothing else; otherwise the message says what to run.
  if ! _registry_auth_nginx >/dev/null && ((EUID == 0)) && command -v apt-get >/dev/null; then
    stack_log "registry-auth: installing nginx from Debian's packages (apt-get)"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx; } >&2 \
      || stack_log "registry-auth: apt-get install nginx failed (see above)"
  fi
  _registry_auth_nginx >/dev/null \
    || stack_die "registry-auth: nginx not found (looked on PATH and in /usr/sbin). It is the authenticating HTTPS gateway in front of the schema registry; install it with: apt-get update && apt-get install -y nginx"
  stack_need_cmd openssl "Install it with: apt-get install -y openssl (registry-auth generates its test CA and htpasswd with it)."
  stack_log "registry-auth: using $(_registry_auth_nginx) ($("$(_registry_auth_nginx)" -v 2>&1 | sed 's/^nginx version: //'))"
}

# _registry_auth_certs: a test CA and the gateway's certificate (SAN 127.0.0.1, localhost and
# REGISTRY_AUTH_HOST), generated once. Unencrypted keys: loopback test credentials only.
_registry_auth_certs() {
  local dir; dir="$(_registry_auth_tls)"
  [[ -f "$dir/.complete" ]] && return 0
  stack_log "registry-auth: generating a test CA and the gateway certificate in $dir"
  rm -rf "$dir"; mkdir -p "$dir"
  local san="IP:127.0.0.1,DNS:localhost"
  if [[ "$REGISTRY_AUTH_HOST" =~ ^[0-9.]+$ ]]; then san+=",IP:$REGISTRY_AUTH_HOST"; else san+=",DNS:$REGISTRY_AUTH_HOST"; fi
  (
    cd "$dir"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca-key.pem -out ca.pem -days 3650 \
      -subj "/CN=logbridge local registry test CA" >/dev/null 2>&1
    openssl req -newkey rsa:2048 -nodes -keyout server-key.pem -out server.csr \
      -subj "/CN=$REGISTRY_AUTH_HOST" >/dev/null 2>&1
    printf 'subjectAltName=%s\n' "$san" >server.ext
    openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 3650 \
      -out server.pem -extfile server.ext >/dev/null 2>&1
    rm -f server.csr server.ext
  ) || stack_die "registry-auth: generating certificates with openssl failed in $dir"
  chmod 600 "$dir"/*-key.pem
  : >"$dir/.complete"
}

# _registry_auth_config: nginx.conf and htpasswd from scripts/stack.versions, at every start
# (so changed credentials take effect on restart)
_registry_auth_config() {
  local dir u p line; dir="$(_registry_auth_dir)"
  mkdir -p "$dir/tmp"
  : >"$dir/htpasswd.tmp"
  chmod 600 "$dir/htpasswd.tmp"
  for u in "$REGISTRY_AUTH_USER" "$REGISTRY_AUTH_READER_USER"; do
    if [[ "$u" == "$REGISTRY_AUTH_USER" ]]; then p="$REGISTRY_AUTH_PASSWORD"; else p="$REGISTRY_AUTH_READER_PASSWORD"; fi
    # the password goes to openssl on stdin, never on a command line
    line="$(printf '%s\n' "$p" | openssl passwd -apr1 -stdin)" \
      || stack_die "registry-auth: openssl passwd -apr1 failed"
    printf '%s:%s\n' "$u" "$line" >>"$dir/htpasswd.tmp"
  done
  mv -f "$dir/htpasswd.tmp" "$dir/htpasswd"
  local user_line=""
  ((EUID == 0)) && user_line="user $(id -un) $(id -gn);"   # nginx ignores (and warns about) it otherwise
  sed -e "s|@DIR@|$dir|g" \
      -e "s|@USER_LINE@|$user_line|g" \
      -e "s|@HOST@|$REGISTRY_AUTH_HOST|g" \
      -e "s|@PORT@|$REGISTRY_AUTH_PORT|g" \
      -e "s|@TOKEN@|$REGISTRY_AUTH_TOKEN|g" \
      -e "s|@READER_USER@|$REGISTRY_AUTH_READER_USER|g" \
      -e "s|@UPSTREAM@|$REGISTRY_HOST:$REGISTRY_PORT|g" \
      "$REGISTRY_AUTH_DEPLOY/nginx.conf" >"$(_registry_auth_conf).tmp"
  chmod 600 "$(_registry_auth_conf).tmp"   # it holds the test token
  mv -f "$(_registry_auth_conf).tmp" "$(_registry_auth_conf)"
  rm -f "$dir/authz.sock"   # a stale socket of a killed nginx blocks the listen
}

_registry_auth_ready() {
  curl -fsS -o /dev/null --max-time 2 --cacert "$(_registry_auth_tls)/ca.pem" \
    -K - "$(_registry_auth_url)/subjects" 2>/dev/null \
    <<<"user = \"$REGISTRY_AUTH_USER:$REGISTRY_AUTH_PASSWORD\""
}

registry-auth_up() {
  local pid nginx
  if pid="$(stack_pid_alive "$(_registry_auth_pidfile)" "$(_registry_auth_marker)")"; then
    stack_log "registry-auth: already running (pid $pid) at $(_registry_auth_url)"
    return 0
  fi
  nginx="$(_registry_auth_nginx)" || registry-auth_install
  stack_need_cmd curl "Install curl (apt-get install -y curl); it is used for the readiness check."
  stack_check_port_free registry-auth "$REGISTRY_AUTH_HOST" "$REGISTRY_AUTH_PORT"
  _registry_auth_certs
  _registry_auth_config
  "$nginx" -t -q -p "$(_registry_auth_dir)" -c "$(_registry_auth_conf)" -e stderr \
    || stack_die "registry-auth: nginx rejects $(_registry_auth_conf); see the message above"
  local t0=$SECONDS
  stack_log "registry-auth: starting at $(_registry_auth_url) -> registry $REGISTRY_HOST:$REGISTRY_PORT (log $(_registry_auth_logfile))"
  # -e stderr: nginx's startup log goes to our log file instead of /var/log/nginx
  stack_spawn "$(_registry_auth_pidfile)" "$(_registry_auth_logfile)" \
    "$nginx" -p "$(_registry_auth_dir)" -c "$(_registry_auth_conf)" -e stderr
  stack_wait_ready registry-auth "$(_registry_auth_pidfile)" "$(_registry_auth_marker)" "$(_registry_auth_logfile)" \
    "$REGISTRY_AUTH_START_TIMEOUT" _registry_auth_ready
  stack_log "registry-auth: ready at $(_registry_auth_url) (pid $(<"$(_registry_auth_pidfile)"), $((SECONDS - t0))s)"
}

registry-auth_down() {
  # SIGTERM is nginx's fast shutdown; its workers exit with the master
  stack_stop registry-auth "$(_registry_auth_pidfile)" "$(_registry_auth_marker)" "$REGISTRY_AUTH_STOP_TIMEOUT"
}

registry-auth_status() {
  local pid
  if pid="$(stack_pid_alive "$(_registry_auth_pidfile)" "$(_registry_auth_marker)")"; then
    if _registry_auth_ready; then
      printf 'registry-auth running  pid %-7s %s (basic auth or bearer token, CA %s)\n' "$pid" "$(_registry_auth_url)" "$(_registry_auth_tls)/ca.pem"
      return 0
    fi
    printf 'registry-auth starting pid %-7s (not ready yet, or the registry behind it is down; log %s)\n' "$pid" "$(_registry_auth_logfile)"
    return 1
  fi
  if _registry_auth_nginx >/dev/null; then
    printf 'registry-auth stopped  (nginx %s)\n' "$(_registry_auth_nginx)"
  else
    printf 'registry-auth stopped  (nginx not installed: apt-get install -y nginx)\n'
  fi
  return 1
}

registry-auth_env() {
  # test credentials for a loopback gateway only (tests/testenv AuthRegistry)
  printf 'export SCHEMA_REGISTRY_AUTH_URL=%s\n' "$(_registry_auth_url)"
  printf 'export SCHEMA_REGISTRY_AUTH_CA=%s\n' "$(_registry_auth_tls)/ca.pem"
  printf 'export SCHEMA_REGISTRY_AUTH_USER=%s SCHEMA_REGISTRY_AUTH_PASSWORD=%s\n' "$REGISTRY_AUTH_USER" "$REGISTRY_AUTH_PASSWORD"
  printf 'export SCHEMA_REGISTRY_AUTH_READER_USER=%s SCHEMA_REGISTRY_AUTH_READER_PASSWORD=%s\n' "$REGISTRY_AUTH_READER_USER" "$REGISTRY_AUTH_READER_PASSWORD"
  printf 'export SCHEMA_REGISTRY_AUTH_TOKEN=%s\n' "$REGISTRY_AUTH_TOKEN"
}

registry-auth_logs() { _registry_auth_logfile; printf '%s/access.log\n' "$(_registry_auth_dir)"; }

registry-auth_clean() {
  # no data of its own; the generated config and logs are rewritten at start
  rm -rf "$(_registry_auth_dir)/tmp"
}
