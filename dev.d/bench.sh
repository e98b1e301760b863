# ./dev bench: the benchmarks; prints a table and writes bench/results.json ({name, value, unit, note} per metric).

# The datapath rows drive real traffic: sockperf for request/response, iptables for the baseline rule set; the l7 rows, wrk.
ensure_bench_deps() {
  local need=()
  command -v sockperf >/dev/null || need+=(sockperf)
  command -v wrk >/dev/null || need+=(wrk)
  command -v iptables-restore >/dev/null || need+=(iptables)
  if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]}"
    [ "$(id -u)" = 0 ] || die "installing packages needs root (sudo ./dev bench)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  fi
}

run_bench() {
  [ "$(id -u)" = 0 ] || die "./dev bench needs root: the datapath rows load eBPF and create network namespaces (sudo ./dev bench)"
  ensure_deps
  ensure_bench_deps
  build
  pg_start
  ensure_certs   # the api rows serve the local CA's certificate, as ./dev up does
  MESH_BENCH_PG=$(pg_conn postgres) MESH_BENCH_TLS_DIR=$(tls_dir) dotnet "$ROOT/bench/Mesh.Bench/bin/Release/net10.0/Mesh.Bench.dll" "${@:-$ROOT/bench/results.json}"
}
