#!/usr/bin/env bash
# Set up the course in ./.venv (first run, or after the requirements change) and open JupyterLab
# on chapter 0. Later runs install nothing, so the course also starts with no network.
set -euo pipefail
cd "$(dirname "$0")"
python=${PYTHON:-python3}
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)"; exit 1; }
[ -x .venv/bin/python ] || "$python" -m venv .venv
# Install only when requirements.txt or pyproject.toml changed since the last install.
stamp=.venv/.course-installed
want=$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r requirements.txt
  echo "$want" > "$stamp"
fi
extra=()
[ "$(id -u)" = 0 ] && extra+=(--allow-root)  # JupyterLab refuses to run as root without it
# The whole project is visible in the file browser; the first page is chapter 0.
exec .venv/bin/jupyter lab "${extra[@]}" --ServerApp.root_dir=. \
  --LabApp.default_url=/lab/tree/chapters/00-the-problem.ipynb "$@"
