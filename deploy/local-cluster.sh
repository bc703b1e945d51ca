#!/usr/bin/env bash
# A real cluster on one machine: a Redis server for membership, N silo processes (each with its own name and
# ports, all on 127.0.0.1) and a training job run from the client against them. Everything it starts is stopped
# when it exits, also on failure or Ctrl+C.
#
#   deploy/local-cluster.sh [--silos N] [--devices LIST[;LIST...]] [--base-port P] [--redis-port P | --redis CONNECTION]
#                           [--dashboard-port P] [--configuration Debug|Release] [--no-build] [--keep] [-- TRAIN OPTIONS...]
#
#   --silos N          silo processes (default 2)
#   --devices LISTS    devices of each silo, ';' between silos, cycled when fewer than N (default cpu):
#                      --devices 'cuda:0,cuda:1;cuda:2,cuda:3' gives silo 0 two GPUs and silo 1 the other two
#   --base-port P      silo i listens on P+i (silo-to-silo) and P+100+i (gateway) (default 11111)
#   --redis-port P     Redis port (default 6380); a password is generated, nothing is persisted
#   --redis CONNECTION use this Redis (host:port[,password=...]) instead of starting one
#   --dashboard-port P serve the Orleans dashboard from silo 0 on P
#   --configuration C  which build to run (default Release); --no-build runs the existing one
#   --keep             after the job, keep the cluster running until Ctrl+C (status: printed command line)
#   TRAIN OPTIONS      passed to `orchestrator train` (default: --steps 200)
#
# Logs: $LOG_DIR (default a fresh temporary folder, printed), one file per process.
# Example: deploy/local-cluster.sh --silos 3 -- --groups 12 --steps 300
set -euo pipefail
cd "$(dirname "$0")/.."

silos=2 devices=cpu base_port=11111 redis_port=6380 redis= dashboard_port= configuration=Release build=1 keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --silos) silos=$2; shift 2 ;;
    --devices) devices=$2; shift 2 ;;
    --base-port) base_port=$2; shift 2 ;;
    --redis-port) redis_port=$2; shift 2 ;;
    --redis) redis=$2; shift 2 ;;
    --dashboard-port) dashboard_port=$2; shift 2 ;;
    --configuration) configuration=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --keep) keep=1; shift ;;
    --) shift; break ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "local-cluster.sh: unknown option $1 (--help lists them)" >&2; exit 2 ;;
  esac
done
train_args=("$@")
[ ${#train_args[@]} -gt 0 ] || train_args=(--steps 200)
[[ "$silos" =~ ^[1-9][0-9]*$ ]] || { echo "local-cluster.sh: --silos must be a positive number" >&2; exit 2; }

log_dir=${LOG_DIR:-$(mktemp -d -t orchestrator-cluster.XXXXXX)}
mkdir -p "$log_dir"
silo_dll=src/Silo/bin/$configuration/net10.0/Orchestrator.Silo.dll
client_dll=src/Client/bin/$configuration/net10.0/orchestrator.dll
cluster_id=local-$$

pids=()
stop_all() {
  # Ask politely (SIGTERM: the silo leaves the membership), then kill whatever is left after 15 s.
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for _ in $(seq 150); do
    alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ $alive -eq 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
}
trap stop_all EXIT
trap 'exit 130' INT TERM

if [ $build -eq 1 ]; then
  echo "building ($configuration)..."
  dotnet build src/Silo -c "$configuration" --nologo -v quiet >"$log_dir/build.log" 2>&1 || { cat "$log_dir/build.log"; exit 1; }
  dotnet build src/Client -c "$configuration" --nologo -v quiet >>"$log_dir/build.log" 2>&1 || { cat "$log_dir/build.log"; exit 1; }
fi
for dll in "$silo_dll" "$client_dll"; do
  [ -f "$dll" ] || { echo "local-cluster.sh: $dll is missing; build it (drop --no-build)" >&2; exit 1; }
done

if [ -z "$redis" ]; then
  command -v redis-server >/dev/null || { echo "local-cluster.sh: redis-server is not installed (apt-get install redis-server), or pass --redis" >&2; exit 1; }
  password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  # The password travels in a config file on stdin, never on a command line that ps shows.
  printf 'port %s\nbind 127.0.0.1\nsave ""\nappendonly no\nrequirepass %s\n' "$redis_port" "$password" |
    redis-server - >"$log_dir/redis.log" 2>&1 &
  pids+=($!)
  redis="127.0.0.1:$redis_port,password=$password"
  for _ in $(seq 50); do
    REDISCLI_AUTH=$password redis-cli -p "$redis_port" ping 2>/dev/null | grep -q PONG && break
    kill -0 "${pids[0]}" 2>/dev/null || { cat "$log_dir/redis.log"; echo "local-cluster.sh: redis-server did not start" >&2; exit 1; }
    sleep 0.1
  done
fi

IFS=';' read -ra device_lists <<<"$devices"
export Cluster__Redis=$redis   # the environment form of --redis keeps the password off the command line
# The cluster secret the silos' data channels prove to each other: a fresh one per run unless one is given.
export Cluster__Secret=${Cluster__Secret:-$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')}
for ((i = 0; i < silos; i++)); do
  silo_devices=${device_lists[$((i % ${#device_lists[@]}))]}
  extra=()
  [ -n "$dashboard_port" ] && [ $i -eq 0 ] && extra=(--dashboard-port "$dashboard_port")
  dotnet "$silo_dll" --membership redis --cluster-id "$cluster_id" --advertised-ip 127.0.0.1 \
    --name "silo-$i" --silo-port $((base_port + i)) --gateway-port $((base_port + 100 + i)) --devices "$silo_devices" \
    "${extra[@]}" >"$log_dir/silo-$i.log" 2>&1 &
  pids+=($!)
  echo "silo-$i (pid $!): $silo_devices, ports $((base_port + i))/$((base_port + 100 + i)), log $log_dir/silo-$i.log"
done

# Ready when every silo is in the membership with its devices: `orchestrator status` lists them.
export ORCHESTRATOR_REDIS=$redis
for attempt in $(seq 60); do
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$log_dir"/*.log; echo "local-cluster.sh: a process exited early (logs in $log_dir)" >&2; exit 1; }
  done
  ready=$(timeout 30 dotnet "$client_dll" status --cluster-id "$cluster_id" 2>/dev/null | grep -c ' silo-[0-9]* ' || true)
  [ "$ready" -ge "$silos" ] && break
  [ "$attempt" -eq 60 ] && { echo "local-cluster.sh: only $ready of $silos silos joined within the wait" >&2; exit 1; }
  sleep 1
done
echo "cluster $cluster_id is up: $silos silos, Redis at ${redis%%,*}"

dotnet "$client_dll" train --cluster-id "$cluster_id" "${train_args[@]}"

if [ $keep -eq 1 ]; then
  echo "cluster running; in another shell: ORCHESTRATOR_REDIS='$redis' dotnet $client_dll status --cluster-id $cluster_id"
  echo "Ctrl+C stops it."
  wait "${pids[0]}"
fi
