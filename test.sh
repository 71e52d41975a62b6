#!/usr/bin/env bash
# Install what the tests need (./.venv, the book's browser assets) and run the whole test suite:
# engine, scenarios, widgets, notebooks (nbval), the book build and the browser tests.
# Extra arguments go to pytest, e.g. `bash test.sh -k work_queue`.
set -euo pipefail
cd "$(dirname "$0")"
python=${PYTHON:-python3}
"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)"; exit 1; }
[ -x /usr/bin/chromium ] || { echo "The browser tests need Debian's chromium: apt-get install -y chromium"; exit 1; }
command -v npm >/dev/null || { echo "npm is needed for the book's offline assets: apt-get install -y npm"; exit 1; }
[ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] \
  || { echo "The RabbitMQ labs need Debian's rabbitmq-server: apt-get install -y rabbitmq-server"; exit 1; }
[ -x .venv/bin/python ] || "$python" -m venv .venv
# Install only what changed since the last run (requirements, package metadata, npm lock file).
stamp=.venv/.tests-installed
want=$(cat requirements.txt requirements-dev.txt pyproject.toml package-lock.json | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || [ ! -d node_modules ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -r requirements-dev.txt
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi
exec .venv/bin/python -m pytest "$@"
