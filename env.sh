#!/bin/bash
# Source me: `source env.sh`. Creates .venv on first use, installs the project with its pinned
# dependencies, and exports where datasets and trainings live (override before sourcing).
# MS_NO_VENV=1: use the Python on PATH as it is (e.g. a GPU machine's own CUDA torch, with the
# project's other dependencies installed there by you; tools/gpu_env.sh does so).

_MS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
_MS_VENV="${MS_VENV:-$_MS_ROOT/.venv}"
_MS_STAMP="$_MS_VENV/.installed-$(cksum < "$_MS_ROOT/pyproject.toml" | cut -d' ' -f1)"

if [ -n "$MS_NO_VENV" ]; then
    :
elif [ ! -f "$_MS_STAMP" ]; then
    echo "[env.sh] setting up $_MS_VENV (first use: about a minute)" >&2
    python3 -m venv "$_MS_VENV" || return 1 2>/dev/null || exit 1
    # torch first, with pip at its pin in pyproject.toml: pip takes a local CPU build where the machine has one
    # (uv looks only at the index) instead of a multi-GB CUDA download; the rest with uv, which fetches and
    # unpacks in parallel: 66-77 s -> 22-23 s on a clean 2-core machine (docs/performance.md). Compiling the
    # bytecode as pip does: where PYTHONDONTWRITEBYTECODE is set, each process would compile its imports again
    # shellcheck disable=SC2046  # two requirements, one word each
    "$_MS_VENV/bin/python" -m pip install -q $("$_MS_VENV/bin/python" "$_MS_ROOT/tools/pinned.py" torch uv) \
        && { "$_MS_VENV/bin/uv" pip install -q --compile-bytecode --python "$_MS_VENV/bin/python" -e "$_MS_ROOT[test,cluster]" \
             || { echo "[env.sh] uv failed (it reads no pip.conf: a mirror or certificate only pip knows?): pip instead" >&2
                  "$_MS_VENV/bin/python" -m pip install -q -e "$_MS_ROOT[test,cluster]"; }; } \
        || { echo "[env.sh] installation failed" >&2; return 1 2>/dev/null || exit 1; }
    rm -f "$_MS_VENV"/.installed-* && touch "$_MS_STAMP"
fi

# shellcheck disable=SC1091
[ -n "$MS_NO_VENV" ] || source "$_MS_VENV/bin/activate"

export MS_ROOT="$_MS_ROOT"
export DATADIR_hh4b="${DATADIR_hh4b:-$_MS_ROOT/datasets/hh4b}"
export MS_OUTDIR="${MS_OUTDIR:-$_MS_ROOT/training}"
# weaver's data-loader workers need fork; numba caches next to the venv, not in site-packages
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-$_MS_VENV/.numba_cache}"
unset _MS_ROOT _MS_VENV _MS_STAMP
