# ./dev bench: the benchmarks; prints a table and writes bench/results.json ({name, value, unit, note} per metric).

run_bench() {
  ensure_deps
  build
  pg_start
  MESH_BENCH_PG=$(pg_conn postgres) dotnet "$ROOT/bench/Mesh.Bench/bin/Release/net10.0/Mesh.Bench.dll" "$ROOT/bench/results.json"
}
