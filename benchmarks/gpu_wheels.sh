#!/usr/bin/env bash
# The wheels a GPU machine without a package registry needs for benchmarks/gpu_check.py: everything the
# pipeline imports beyond what that machine's image already holds (benchmarks/gpu_image.txt), one version each.
#
#   benchmarks/gpu_wheels.sh                 # -> .whl/ for the GPU image: CPython 3.12, manylinux x86-64
#   benchmarks/gpu_wheels.sh --local DIR     # -> DIR for this machine's Python (the CPU rehearsal)
#
# Binary and pure-Python wheels are downloaded (--only-binary, --no-deps: the list below is the whole closure);
# the two packages PyPI has only as source (snakemake's connection_pool, the reference diffwave 0.1.7) are built
# here with `pip wheel --no-deps`. Left out on purpose: everything the image has (its numpy, scipy, torch... stay
# the ones imported), av (only compressed corpora need it; the check's data are WAV files) and webrtcvad (the
# pretrained embedding's weights come from resemblyzer's wheel, which is never imported).
# PYTHON names the interpreter whose pip does the work (default python3). Needs PyPI, here, not there.
set -euo pipefail

local=0
if [[ ${1:-} == --local ]]; then local=1; shift; fi
out=${1:-.whl}
py=${PYTHON:-python3}
here=$(cd "$(dirname "$0")" && pwd)

# Pinned: these versions run the test suite here. Names with compiled parts need a cp312 manylinux wheel there.
wheels=(
  annotated-types==0.8.0 argparse-dataclass==2.0.0 audioread==3.1.0 cffi==2.1.1 conda-inject==1.3.2
  configargparse==1.9.0 decorator==5.3.2 docutils==0.22.4 dpath==2.2.0 fastjsonschema==2.22.3 gitdb==4.0.12
  gitpython==3.2.1 greenlet==3.5.6 humanfriendly==10.0 immutables==0.21 jsonschema==4.26.0
  jsonschema-specifications==2025.9.1 jupyter-core==5.9.1 librosa==0.11.0 nbformat==5.11.1 platformdirs==4.14.9
  pooch==1.9.0 pulp==3.3.2 pycparser==3.12 pydantic==2.14.4 pydantic-core==2.50.5 referencing==0.37.0
  rpds-py==2026.9.1 smart-open==7.7.1 smmap==5.0.3 snakemake==9.27.1 snakemake-interface-common==1.23.0
  snakemake-interface-executor-plugins==9.4.0 snakemake-interface-logger-plugins==2.1.0
  snakemake-interface-report-plugins==1.3.0 snakemake-interface-scheduler-plugins==2.0.2
  snakemake-interface-storage-plugins==4.4.1 soundfile==0.14.0 soxr==1.1.0 sqlalchemy==2.0.58 sqlmodel==0.0.37
  tenacity==9.2.1 throttler==1.2.3 traitlets==5.16.1 typing-inspection==0.4.5 yte==1.9.4 resemblyzer==0.1.4
)
sources=(connection-pool==0.0.3 diffwave==0.1.7)

# none of them may be one the image has: a second copy of numpy on the path is how the last attempt broke
norm() { tr 'A-Z_.' 'a-z--' <<<"${1%%==*}"; }
for spec in "${wheels[@]}" "${sources[@]}"; do
  if grep -qxF "$(norm "$spec")" <(grep -v '^#' "$here/gpu_image.txt"); then
    echo "gpu_wheels.sh: ${spec%%==*} is in the GPU image (benchmarks/gpu_image.txt): leave it out" >&2
    exit 1
  fi
done

target=()
if (( ! local )); then
  target=(--python-version 3.12 --implementation cp --abi cp312)
  for n in 28 27 24 17 5; do target+=(--platform "manylinux_2_${n}_x86_64"); done
  target+=(--platform manylinux2014_x86_64 --platform manylinux1_x86_64)
fi

rm -rf "$out"
mkdir -p "$out"
"$py" -m pip download -q --no-deps --only-binary=:all: "${target[@]}" -d "$out" "${wheels[@]}"
"$py" -m pip wheel -q --no-deps -w "$out" "${sources[@]}"   # pure Python: the same wheel serves any CPython 3

count=$(ls "$out"/*.whl | wc -l)
if (( count != ${#wheels[@]} + ${#sources[@]} )); then
  echo "gpu_wheels.sh: $count wheels in $out for ${#wheels[@]} + ${#sources[@]} packages" >&2
  exit 1
fi
mib=$(( $(du -cb "$out"/*.whl | tail -1 | cut -f1) / 1048576 ))
if (( mib > 56 )); then  # the lent machine takes 64 MiB with the working tree (about 1 MiB)
  echo "gpu_wheels.sh: $mib MiB of wheels is too much to carry" >&2
  exit 1
fi
echo "$count wheels, $mib MiB, in $out"
