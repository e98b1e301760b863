# ./dev test: every test project, against a private PostgreSQL, real BPF and real namespaces.
# Ends with one line "N passed, N failed, N skipped". Options: ./dev test [--filter EXPR] [project-name ...]

run_tests() {
  local filter="" projects=()
  while [ $# -gt 0 ]; do
    case "$1" in
      --filter) filter=$2; shift 2 ;;
      *) projects+=("$1"); shift ;;
    esac
  done
  [ ${#projects[@]} -gt 0 ] || projects=(Contracts.Tests ControlPlane.Tests NodeAgent.Tests Lab.Tests Meshctl.Tests EndToEnd.Tests)

  ensure_deps
  build
  pg_start
  export MESH_TEST_PG; MESH_TEST_PG=$(pg_conn postgres)
  local results="$MESH_HOME/test-results"; rm -rf "$results"; mkdir -p "$results"

  local passed=0 failed=0 skipped=0 p
  for p in "${projects[@]}"; do
    local exe="$ROOT/tests/$p/bin/Release/net10.0/$p"
    [ -x "$exe" ] || { echo "no test binary for $p (build failed?)" >&2; failed=$((failed + 1)); continue; }
    say "$p"
    local args=(-xml "$results/$p.xml" -noLogo -showLiveOutput)
    [ -n "$filter" ] && args+=(-filter "$filter")
    # Each assembly gets a hard time limit so a hung test cannot eat CI's whole budget.
    (cd "$(dirname "$exe")" && timeout --kill-after=30 1500 "$exe" "${args[@]}") || true
    if [ -f "$results/$p.xml" ]; then
      local line; line=$(grep -o '<assembly [^>]*>' "$results/$p.xml" | head -1)
      local t f s e
      t=$(attr total "$line"); f=$(attr failed "$line"); s=$(attr skipped "$line"); e=$(attr errors "$line")
      passed=$((passed + t - f - s)); failed=$((failed + f + e)); skipped=$((skipped + s))
    else
      echo "$p produced no results (crashed or timed out)" >&2
      failed=$((failed + 1))
    fi
  done
  echo "$passed passed, $failed failed, $skipped skipped"
  [ "$failed" -eq 0 ]
}

attr() { echo "$2" | grep -o " $1=\"[0-9]*\"" | grep -o '[0-9]*' | head -1 || echo 0; }
