# ./dev demo: PostgreSQL, the control plane, one node agent and three lab pods; a label policy that visibly
# allows and blocks real TCP in the kernel; flows printed. Exits non-zero if any verdict is not the expected one.

# The demo runs beside whatever ./dev up started, never on it: a control plane of its own on a fresh database, its
# own ports and a lab of its own, so what a user built by hand stays as it was and every run starts from nothing.
DEMO_FAILURES=0
CP_NAME=controlplane-demo
CP_DB=mesh_demo
API_PORT=${MESH_DEMO_API_PORT:-7180}
GRPC_PORT=${MESH_DEMO_GRPC_PORT:-7181}
REMOTING_PORT=${MESH_DEMO_REMOTING_PORT:-7182}
# Its own context file too: the one ./dev up wrote keeps naming the control plane the user started.
export MESH_LAB=demo MESH_SERVER="https://127.0.0.1:$API_PORT" MESH_CONFIG="$MESH_HOME/demo-config"

demo_cleanup() {
  say "cleaning up"
  meshctl lab down >/dev/null 2>&1 || true
  cp_stop
}

# expect FROM TO PORT allow|deny: probes real TCP and prints one table row.
expect() {
  local from=$1 to=$2 port=$3 want=$4 got
  if meshctl lab probe "$from" "$to" --port "$port" --protocol tcp >/dev/null 2>&1; then got=allow; else got=deny; fi
  local mark='\033[32m✓\033[0m'
  [ "$got" = "$want" ] || { mark='\033[31m✗ UNEXPECTED\033[0m'; DEMO_FAILURES=$((DEMO_FAILURES + 1)); }
  printf "  %-18s -> %-18s TCP %-5s expected %-6s got %-6s $mark\n" "$from" "$to" "$port" "$want" "$got"
}

demo() {
  [ "$(id -u)" = 0 ] || die "the demo creates network namespaces and loads BPF: run it as root"
  ensure_deps; build; pg_start
  trap demo_cleanup EXIT
  meshctl lab down >/dev/null 2>&1 || true
  cp_stop
  pg_drop_database "$CP_DB"
  cp_start

  say "a lab node with its agent, and three pods"
  meshctl lab up --nodes 1
  meshctl lab pod add default/frontend --labels app=frontend
  meshctl lab pod add default/backend --labels app=backend
  meshctl lab pod add default/other --labels app=other
  meshctl lab pod list
  meshctl policy wait --timeout 60s

  say "no policy yet: everything connects"
  expect default/frontend default/backend 80 allow
  expect default/other default/backend 80 allow
  expect default/frontend default/backend 81 allow

  say "applying: frontend may reach backend on TCP 80"
  sed -n '1p' "$ROOT/examples/allow-frontend-to-backend.yaml"
  meshctl policy apply -f "$ROOT/examples/allow-frontend-to-backend.yaml"
  meshctl policy wait --timeout 60s
  meshctl node status
  expect default/frontend default/backend 80 allow
  expect default/other default/backend 80 deny
  expect default/frontend default/backend 81 deny

  say "flows in the cluster's flow history (newest last)"
  meshctl observe --last 12

  say "deleting the policy: everything connects again"
  meshctl policy delete default/allow-frontend
  meshctl policy wait --timeout 60s
  expect default/frontend default/backend 80 allow
  expect default/other default/backend 80 allow
  expect default/frontend default/backend 81 allow

  say "identities the control plane allocated for the pods' label sets"
  meshctl identity list
  if [ "$DEMO_FAILURES" -ne 0 ]; then die "$DEMO_FAILURES verdict(s) were not the expected ones"; fi
  printf '\033[1;32mdemo passed:\033[0m every verdict was the expected one\n'
}
