#!/usr/bin/env bash
# Builds a Crucial executable as an AWS Lambda `bootstrap` for the provided.al2023
# runtime and zips it, stripped: a fully static executable by default (Swift runtime,
# Foundation, libprotobuf-c and glibc linked in), checked to need no glibc symbol newer
# than 2.34 and no shared library that Amazon Linux 2023 lacks. Prints the aws CLI
# commands that deploy the zip.
#
#   tools/package-lambda.sh [--product crucial-demo] [--output .build/lambda/crucial-demo.zip]
#                           [--function-name crucial] [--dynamic-glibc]
#   tools/package-lambda.sh --binary PATH [--no-check] ...   zip an already built binary
#   tools/package-lambda.sh --check PATH                      only check a binary
set -euo pipefail
cd "$(dirname "$0")/.."

product=crucial-demo output="" binary="" check_only="" no_check=0 static_executable=1 function_name=crucial
usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }
while (($#)); do
  case "$1" in
    --product) product="$2"; shift 2 ;;
    --output) output="$2"; shift 2 ;;
    --binary) binary="$2"; shift 2 ;;
    --check) check_only="$2"; shift 2 ;;
    --no-check) no_check=1; shift ;;
    --dynamic-glibc) static_executable=0; shift ;;
    --function-name) function_name="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "package-lambda: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done

# Shared libraries a provided.al2023 function can load: glibc's, libgcc's, libstdc++'s.
allowed_libs='^(libc\.so\.6|libm\.so\.6|libpthread\.so\.0|libdl\.so\.2|librt\.so\.1|libutil\.so\.1|ld-linux-x86-64\.so\.2|ld-linux-aarch64\.so\.1|libgcc_s\.so\.1|libstdc\+\+\.so\.6|libz\.so\.1)$'
max_glibc=2.34

newer_than_max() { [[ "$(printf '%s\n%s\n' "$1" "$max_glibc" | sort -V | tail -1)" != "$max_glibc" ]]; }

# check BINARY: fails (and says why) when Amazon Linux 2023 could not run it.
check() {
  local bin="$1" bad=0
  [[ -x "$bin" ]] || { echo "package-lambda: $bin is not an executable file" >&2; return 1; }
  local needed; needed=$( (readelf -d "$bin" 2>/dev/null || true) | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
  for lib in $needed; do
    if ! [[ "$lib" =~ $allowed_libs ]]; then
      echo "package-lambda: $bin needs $lib, which provided.al2023 does not have (build with --static-swift-stdlib; link it statically)" >&2
      bad=1
    fi
  done
  # "(GLIBC_2.34) __libc_start_main" in objdump -T: the version each imported symbol needs.
  local versions; versions=$( (objdump -T "$bin" 2>/dev/null || true) | awk 'match($0, /GLIBC_[0-9.]+/) { print substr($0, RSTART + 6, RLENGTH - 6), $NF }')
  local newest; newest=$(echo "$versions" | awk 'NF { print $1 }' | sort -uV | tail -1)
  local too_new; too_new=$(echo "$versions" | while read -r v sym; do
    if [[ -n "$v" ]] && newer_than_max "$v"; then echo "$sym@GLIBC_$v"; fi; done | sort -u | tr '\n' ' ')
  if [[ -n "$too_new" ]]; then
    echo "package-lambda: $bin needs glibc $newest, Amazon Linux 2023 has $max_glibc: $too_new(build without --dynamic-glibc)" >&2
    bad=1
  fi
  if ((bad)); then return 1; fi
  if [[ -z "$needed" ]]; then
    echo "==> $bin: statically linked, no shared libraries" >&2
  else
    echo "==> $bin: needs $(echo $needed | tr ' ' ','), glibc ${newest:-none} <= $max_glibc: runs on provided.al2023" >&2
  fi
}

if [[ -n "$check_only" ]]; then check "$check_only"; exit $?; fi

source tools/lib/ensure-deps.sh
ensure_deps zip binutils

if [[ -z "$binary" ]]; then
  # A folder holding only libprotobuf-c.a, and a pkg-config file that points there:
  # SwiftPM then links -lprotobuf-c from the archive instead of the shared library.
  static_dir=$PWD/.build-lambda/static-libs
  mkdir -p "$static_dir/pkgconfig"
  archive=$(pkg-config --variable=libdir libprotobuf-c)/libprotobuf-c.a
  [[ -f "$archive" ]] || { echo "package-lambda: $archive missing (apt-get install libprotobuf-c-dev)" >&2; exit 1; }
  ln -sf "$archive" "$static_dir/libprotobuf-c.a"
  sed -e "s|^libdir=.*|libdir=$static_dir|" "$(pkg-config --variable=pcfiledir libprotobuf-c)/libprotobuf-c.pc" \
    > "$static_dir/pkgconfig/libprotobuf-c.pc"
  export PKG_CONFIG_PATH="$static_dir/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
  flags=(-c release --product "$product" --scratch-path .build-lambda)
  # Static glibc: this toolchain's Foundation needs hypot@GLIBC_2.35, newer than Amazon
  # Linux 2023's 2.34. The payload carries DSO servers as IP addresses, so the missing
  # name-service modules of a static binary do not matter for reaching them.
  if ((static_executable)); then flags+=(--static-swift-stdlib -Xswiftc -static-executable); else flags+=(--static-swift-stdlib); fi
  echo "==> swift build ${flags[*]} (the first build takes several minutes)" >&2
  swift build "${flags[@]}" >&2
  binary=".build-lambda/release/$product"
fi
[[ -x "$binary" ]] || { echo "package-lambda: $binary is not an executable file" >&2; exit 1; }
((no_check)) || check "$binary"

output=${output:-.build/lambda/$(basename "$binary").zip}
mkdir -p "$(dirname "$output")"
output=$(cd "$(dirname "$output")" && pwd)/$(basename "$output")
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp "$binary" "$stage/bootstrap"
chmod 755 "$stage/bootstrap"
strip --strip-all "$stage/bootstrap" 2>/dev/null || true  # debug info is most of the size
rm -f "$output"
(cd "$stage" && zip -q -X "$output" bootstrap)
echo "==> $output ($(du -h "$output" | cut -f1)): bootstrap at its root" >&2

arch=$(uname -m); [[ "$arch" == aarch64 ]] && arch=arm64
cat <<MSG
Deploy it (once), with a role that may write logs:
  aws lambda create-function --function-name $function_name --runtime provided.al2023 --architectures $arch \\
    --handler bootstrap --memory-size 1769 --timeout 900 \\
    --role arn:aws:iam::ACCOUNT_ID:role/ROLE_NAME --zip-file fileb://$output
Update it after a rebuild:
  aws lambda update-function-code --function-name $function_name --zip-file fileb://$output
Then run the driver with CRUCIAL_LAMBDA_ENDPOINT=aws CRUCIAL_LAMBDA_FUNCTION=$function_name and
CRUCIAL_SERVERS=<DSO servers the functions can reach>.
MSG
