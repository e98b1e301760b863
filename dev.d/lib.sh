# Shared pieces of ./dev: dependencies, build, private PostgreSQL, control plane.
MESH_HOME=${MESH_HOME:-$ROOT/.mesh}
PG_PORT=${MESH_PG_PORT:-55432}
API_PORT=${MESH_API_PORT:-7080}
GRPC_PORT=${MESH_GRPC_PORT:-7081}
REMOTING_PORT=${MESH_REMOTING_PORT:-7082}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
export MESH_HOME DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1

say() { printf '\033[1;36m==>\033[0m %s\n' "$*" >&2; }
die() { printf '\033[1;31merror:\033[0m %s\n' "$*" >&2; exit 1; }

# Installs the Debian packages Mesh needs, only when something is missing.
ensure_deps() {
  local need=()
  command -v clang-14 >/dev/null || need+=(clang-14 llvm-14)
  [ -f /usr/include/bpf/libbpf.h ] || need+=(libbpf-dev)
  command -v bpftool >/dev/null || need+=(bpftool)
  command -v ip >/dev/null || need+=(iproute2)
  command -v nsenter >/dev/null || need+=(util-linux)
  # The lab's DNS server (meshctl lab dns up); dnsmasq-base is the binary without a system service of its own.
  [ -x /usr/sbin/dnsmasq ] || need+=(dnsmasq-base)
  # The proxies' tests divert traffic into them with iptables' TPROXY target, as the datapath does with bpf_sk_assign.
  [ -x /usr/sbin/iptables ] || need+=(iptables)
  # mesh-cni delegates addresses to the reference IPAM plugins (host-local), as a Kubernetes node has them.
  [ -x /usr/lib/cni/host-local ] || need+=(containernetworking-plugins)
  command -v curl >/dev/null || need+=(curl)
  command -v openssl >/dev/null || need+=(openssl)
  [ -x "$PG_BIN/initdb" ] || need+=(postgresql-15)
  command -v node >/dev/null || need+=(nodejs npm)
  # The service map's end-to-end test drives Debian's browser (playwright-core downloads none).
  [ -x /usr/bin/chromium ] || need+=(chromium)
  # The Helm chart is rendered without helm (deploy/helm/render): Go's text/template with Debian's Sprig and YAML.
  command -v go >/dev/null || need+=(golang-go)
  [ -d /usr/share/gocode/src/github.com/Masterminds/sprig ] || need+=(golang-github-masterminds-sprig-dev)
  [ -d /usr/share/gocode/src/sigs.k8s.io/yaml ] || need+=(golang-k8s-sigs-yaml-dev)
  if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]}"
    [ "$(id -u)" = 0 ] || die "installing packages needs root (sudo ./dev ...)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  command -v dotnet >/dev/null || die "the .NET SDK 10 is required (dotnet on PATH)"
  mountpoint -q /sys/fs/bpf 2>/dev/null || mount -t bpf bpf /sys/fs/bpf 2>/dev/null || true
}

# Prints each project as it is built: the first build takes minutes (restoring packages included).
build() {
  say "building (the first build restores packages and takes a few minutes)"
  if ! dotnet build "$ROOT/Mesh.sln" -c Release -nologo -v m -clp:"NoSummary" -tl:off 2>&1 \
      | sed -un 's#^ *\([A-Za-z.]*\) -> .*#    built \1#p; /error/p' >&2; then
    die "build failed"
  fi
}

# deploy/manifests/ from the chart with its default values; the deploy tests fail while the two differ.
render_manifests() {
  local tool; tool=$(mktemp -d)
  (cd "$ROOT" && GO111MODULE=off GOPATH=/usr/share/gocode go build -o "$tool/render" ./deploy/helm/render) || die "the chart renderer did not build"
  find "$ROOT/deploy/manifests" -name '[1-9]*.yaml' -delete
  "$tool/render" --namespace mesh-system --output-dir "$ROOT/deploy/manifests" "$ROOT/deploy/helm/mesh" || die "the chart did not render"
  rm -rf "$tool"
  say "deploy/manifests/ rendered from deploy/helm/mesh"
}

bin_dir() { echo "$ROOT/src/$1/bin/Release/net10.0"; }

pg_conn() { echo "Host=127.0.0.1;Port=$PG_PORT;Username=postgres;Database=${1:-postgres}"; }

# A private PostgreSQL: own data dir and port, run as the postgres user.
pg_start() {
  local data="$MESH_HOME/pg"
  mkdir -p "$MESH_HOME"
  if [ ! -f "$data/PG_VERSION" ]; then
    say "initialising PostgreSQL in $data"
    mkdir -p "$data"; chown postgres:postgres "$data"; chmod 700 "$data"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$data" -U postgres -A trust >/dev/null
  fi
  chmod o+x "$MESH_HOME"
  if runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1; then return 0; fi
  say "starting PostgreSQL on 127.0.0.1:$PG_PORT"
  # Flow history writes tens of MB of WAL a second: with the default 1 GB of WAL a checkpoint every minute stalls
  # ingest (a node's flows back up and are lost); 8 GB and 15 min keep checkpoints spread out.
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$data" -l "$data/server.log" -w -t 60 \
    -o "-p $PG_PORT -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=on -c shared_buffers=1GB -c max_wal_size=8GB -c checkpoint_timeout=15min" start >/dev/null \
    || die "PostgreSQL did not start; see $data/server.log"
}

# Drops a database of the private server (a fresh start for the demo).
pg_drop_database() {
  runuser -u postgres -- "$PG_BIN/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -q \
    -c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" >/dev/null
}

pg_stop() {
  local data="$MESH_HOME/pg"
  [ -f "$data/PG_VERSION" ] || return 0
  runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
}

meshctl() { "$ROOT/meshctl" "$@"; }

# The control plane of ./dev up is "controlplane" on database mesh; the demo runs one of its own beside it.
CP_NAME=${CP_NAME:-controlplane}
CP_DB=${CP_DB:-mesh}
cp_pidfile() { echo "$MESH_HOME/$CP_NAME.pid"; }
cp_log() { echo "$MESH_HOME/$CP_NAME.log"; }
# The control plane's static token file (Kubernetes' format), read by it and re-read when the lab adds node tokens.
cp_tokens() { echo "$MESH_HOME/$CP_NAME-tokens.csv"; }

# meshctl's context file: $MESH_CONFIG, else ~/.config/mesh/config of the user who ran ./dev (also under sudo).
context_path() {
  if [ -n "${MESH_CONFIG:-}" ]; then echo "$MESH_CONFIG"; return; fi
  local home=$HOME
  if [ -n "${SUDO_USER:-}" ]; then home=$(getent passwd "$SUDO_USER" | cut -d: -f6); fi
  echo "$home/.config/mesh/config"
}

# A token file with one random admin token, created once (mode 0600: the token is a password).
ensure_tokens() {
  local file; file=$(cp_tokens)
  [ -s "$file" ] && return 0
  mkdir -p "$MESH_HOME"
  (umask 077; printf '%s,admin,admin,"mesh:admin"\n' "$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')" >"$file")
}

# The control plane's TLS: a local CA, made once, and a certificate it issued for 127.0.0.1 and localhost, which both
# ports serve. meshctl and the lab's agents believe only this CA (the context file names it). Keys are mode 0600.
tls_dir() { echo "$MESH_HOME/tls"; }
ensure_certs() {
  local dir; dir=$(tls_dir)
  [ -s "$dir/controlplane.crt" ] && [ -s "$dir/controlplane.key" ] && return 0
  mkdir -p "$dir"
  if [ ! -s "$dir/ca.key" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 -subj "/CN=Mesh local CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null || die "openssl could not make the CA in $dir"
  fi
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=mesh-controlplane" \
    -keyout "$dir/controlplane.key" -out "$dir/controlplane.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' >"$dir/controlplane.ext"
  openssl x509 -req -in "$dir/controlplane.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial -days 825 \
    -extfile "$dir/controlplane.ext" -out "$dir/controlplane.crt" 2>/dev/null || die "openssl could not issue the control plane's certificate"
  rm -f "$dir/controlplane.csr" "$dir/controlplane.ext"
  chmod 600 "$dir"/*.key; chmod 644 "$dir"/*.crt
}

# Writes meshctl's context: the server, the admin token, the CA to believe and the token file the lab adds node tokens to.
write_context() {
  local path token; path=$(context_path)
  token=$(awk -F, '$4 ~ /mesh:admin/ { print $1; exit }' "$(cp_tokens)")
  mkdir -p "$(dirname "$path")"
  (umask 077; printf '{"server": "https://127.0.0.1:%s", "token": "%s", "tokenFile": "%s", "certificateAuthority": "%s"}\n' \
    "$API_PORT" "$token" "$(cp_tokens)" "$(tls_dir)/ca.crt" >"$path")
  if [ -n "${SUDO_USER:-}" ] && [ -z "${MESH_CONFIG:-}" ]; then chown "$SUDO_USER:" "$(dirname "$path")" "$path" 2>/dev/null || true; fi
}

cp_running() { [ -f "$(cp_pidfile)" ] && kill -0 "$(cat "$(cp_pidfile)")" 2>/dev/null; }

# Starts the control plane in the background (if it is not running) and waits until it answers.
cp_start() {
  ensure_tokens
  ensure_certs
  write_context
  if cp_running; then return 0; fi
  say "starting the control plane on 127.0.0.1:$API_PORT (gRPC $GRPC_PORT)"
  nohup dotnet "$(bin_dir ControlPlane)/mesh-controlplane.dll" --pg="$(pg_conn "$CP_DB")" \
    --api-port="$API_PORT" --grpc-port="$GRPC_PORT" --remoting-port="$REMOTING_PORT" --token-file="$(cp_tokens)" \
    --tls-cert-file="$(tls_dir)/controlplane.crt" --tls-private-key-file="$(tls_dir)/controlplane.key" >"$(cp_log)" 2>&1 &
  echo $! >"$(cp_pidfile)"
  for _ in $(seq 1 150); do
    if curl -fs --cacert "$(tls_dir)/ca.crt" "https://127.0.0.1:$API_PORT/readyz" >/dev/null 2>&1; then return 0; fi
    cp_running || { tail -20 "$(cp_log)" >&2; die "the control plane exited; log: $(cp_log)"; }
    sleep 0.2
  done
  die "the control plane did not answer within 30 s; log: $(cp_log)"
}

cp_stop() {
  if cp_running; then
    local pid; pid=$(cat "$(cp_pidfile)")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$(cp_pidfile)"
}

up() {
  ensure_deps; build; pg_start; cp_start
  cat >&2 <<MSG

Mesh is up.
  control plane  https://127.0.0.1:$API_PORT   (OpenAPI: /openapi/v1.json; log: $(cp_log))
  agent gRPC     https://127.0.0.1:$GRPC_PORT
  TLS            CA $(tls_dir)/ca.crt   (curl --cacert it; the certificate names 127.0.0.1 and localhost)
  PostgreSQL     $(pg_conn "$CP_DB")
  meshctl        $(context_path)   (server and admin token; MESH_TOKEN overrides the token)
  tokens         $(cp_tokens)   (token,user,uid,"groups": add lines to issue tokens)
Try:  ./meshctl status      ./meshctl lab up      ./meshctl --help
Stop: ./dev down
MSG
}

down() {
  if [ -x "$ROOT/meshctl" ] && [ -f "$(bin_dir Meshctl)/meshctl.dll" ]; then meshctl lab down >/dev/null 2>&1 || true; fi
  cp_stop
  pg_stop
  say "stopped"
}
