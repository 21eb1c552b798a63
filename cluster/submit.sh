#!/usr/bin/env bash
# Submit a disco_ray run to a running Ray cluster as a Ray job:
#   ray job submit --working-dir . --runtime-env cluster/runtime_env.yaml \
#       -- python -m disco_ray run CONFIG.yaml [ARGS...]
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: cluster/submit.sh [--address URL] [--no-wait] [--submission-id ID] CONFIG.yaml [-- ARGS...]

Submits `python -m disco_ray run CONFIG.yaml ARGS...` to a Ray cluster. The repository
root is uploaded as the job's working directory (cluster/runtime_env.yaml lists what is
left out), so CONFIG.yaml is a path relative to the repository root.

Options:
  --address URL        Ray dashboard / job API address. Default: $RAY_ADDRESS, else
                       http://127.0.0.1:8265 (after `ray dashboard cluster/aws.yaml` or
                       `kubectl port-forward svc/disco-ray-head-svc 8265:8265`).
  --no-wait            Return once the job is accepted instead of streaming its logs.
  --submission-id ID   Job id. Default: disco-<config name>-<UTC timestamp>.
  -h, --help           Show this help.
  -- ARGS...           Passed on to `disco_ray run`, e.g. -- --output /home/ray/disco_runs/mmlu

Token authentication (Ray 2.60 clusters, KubeRay authOptions.mode=token): the client needs
the cluster's token. This script uses, in order: RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH,
~/.disco_ray/auth_token (the file the cluster launcher configs mount), ~/.ray/auth_token,
and sets RAY_AUTH_MODE=token when it finds one (unless RAY_AUTH_MODE is already set).
On KubeRay:
  export RAY_AUTH_TOKEN=$(kubectl get secret disco-ray -o jsonpath='{.data.auth_token}' | base64 -d)
EOF
}

die() { echo "submit.sh: $*" >&2; exit 2; }

address="${RAY_ADDRESS:-http://127.0.0.1:8265}"
wait_for_job=1
submission_id=""
config=""
extra_args=()

while [[ $# -gt 0 ]]; do
  case "$1" in
    -h|--help) usage; exit 0 ;;
    --address) [[ $# -ge 2 ]] || die "--address needs a value"; address="$2"; shift 2 ;;
    --address=*) address="${1#*=}"; shift ;;
    --no-wait) wait_for_job=0; shift ;;
    --submission-id) [[ $# -ge 2 ]] || die "--submission-id needs a value"; submission_id="$2"; shift 2 ;;
    --submission-id=*) submission_id="${1#*=}"; shift ;;
    --) shift; extra_args=("$@"); break ;;
    -*) usage >&2; die "unknown option: $1" ;;
    *) [[ -z "$config" ]] || die "only one CONFIG.yaml, got '$config' and '$1'"; config="$1"; shift ;;
  esac
done

[[ -n "$config" ]] || { usage >&2; exit 2; }
command -v ray >/dev/null 2>&1 || die "the 'ray' CLI is not on PATH (pip install 'ray[default]==2.60.0')"

# The working directory that gets uploaded is the repository root.
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
[[ -f "$config" ]] || die "config '$config' not found under the repository root $repo_root"
case "$config" in /*) die "give CONFIG.yaml relative to the repository root (it is read on the cluster)" ;; esac

# Token authentication for the job API.
if [[ -z "${RAY_AUTH_TOKEN:-}" && -z "${RAY_AUTH_TOKEN_PATH:-}" ]]; then
  for candidate in "$HOME/.disco_ray/auth_token" "$HOME/.ray/auth_token"; do
    if [[ -s "$candidate" ]]; then export RAY_AUTH_TOKEN_PATH="$candidate"; break; fi
  done
fi
if [[ -z "${RAY_AUTH_MODE:-}" ]]; then
  if [[ -n "${RAY_AUTH_TOKEN:-}" || -n "${RAY_AUTH_TOKEN_PATH:-}" ]]; then
    export RAY_AUTH_MODE=token
  else
    echo "submit.sh: no Ray auth token found; submitting without token authentication" >&2
  fi
fi

if [[ -z "$submission_id" ]]; then
  name="$(basename "$config")"
  submission_id="disco-${name%.*}-$(date -u +%Y%m%d-%H%M%S)"
fi

submit=(ray job submit --address "$address" --submission-id "$submission_id"
        --working-dir . --runtime-env cluster/runtime_env.yaml)
[[ "$wait_for_job" -eq 1 ]] || submit+=(--no-wait)

# ${arr[@]+"${arr[@]}"}: an empty array under `set -u` also on bash 3.2 (macOS).
entrypoint=(python -m disco_ray run "$config" ${extra_args[@]+"${extra_args[@]}"})
echo "+ ${submit[*]} -- ${entrypoint[*]}" >&2
rc=0
"${submit[@]}" -- "${entrypoint[@]}" || rc=$?

cat >&2 <<EOF

Job ${submission_id} at ${address}
  follow the logs:    ray job logs -f --address ${address} ${submission_id}
  status / stop:      ray job status --address ${address} ${submission_id}
                      ray job stop --address ${address} ${submission_id}
  autoscaling:        ray status (on the head: ray exec cluster/aws.yaml 'ray status'),
                      or the dashboard's Cluster tab at ${address}
Results (condensed benchmark, predictions.json/.csv, report.html) are written to the run's
--output directory ON THE HEAD NODE; relative paths are inside the job's uploaded working
directory there. Pass an absolute --output (e.g. -- --output /home/ray/disco_runs/NAME) and
copy it back with: ray rsync-down cluster/aws.yaml /home/ray/disco_runs/NAME ./disco_runs/NAME
(KubeRay: kubectl cp <head-pod>:/home/ray/disco_runs/NAME ./disco_runs/NAME).
EOF
exit "$rc"
