#!/bin/sh
# Generates the engram.v1 Java classes from proto/engram/v1 (protoc with
# Debian's protoc-gen-grpc-java), compiles them with Example.java against
# Debian's jars in /usr/share/java, and runs the example. Needs
# protobuf-compiler, protobuf-compiler-grpc-java-plugin, libgrpc-java,
# libprotobuf-java, libnetty-java, libperfmark-java and, for the
# javax.annotation.Generated the 1.41 plugin writes (compile time only),
# libgeronimo-annotation-1.3-spec-java.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
proto=$here/../../../proto
plugin=/usr/bin/grpc_java_plugin
jars=/usr/share/java
cp=
for j in grpc-api grpc-context grpc-core grpc-netty grpc-protobuf grpc-protobuf-lite grpc-stub protobuf guava \
	perfmark-api netty-buffer netty-codec netty-codec-http netty-codec-http2 netty-common netty-handler \
	netty-resolver netty-transport; do
	[ -f "$jars/$j.jar" ] || { echo "run.sh: $jars/$j.jar is missing (install Debian's gRPC Java packages)" >&2; exit 1; }
	cp=$cp${cp:+:}$jars/$j.jar
done
generated=$jars/geronimo-annotation-1.3-spec.jar
[ -f "$generated" ] || { echo "run.sh: $generated is missing (apt-get install libgeronimo-annotation-1.3-spec-java)" >&2; exit 1; }
command -v protoc >/dev/null || { echo "run.sh: protoc is missing (apt-get install protobuf-compiler)" >&2; exit 1; }
[ -x "$plugin" ] || { echo "run.sh: $plugin is missing (apt-get install protobuf-compiler-grpc-java-plugin)" >&2; exit 1; }

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
mkdir "$out/src" "$out/classes"
protoc -I"$proto" --java_out="$out/src" --plugin=protoc-gen-grpc-java="$plugin" --grpc-java_out="$out/src" \
	"$proto/engram/v1/memory.proto" "$proto/engram/v1/service.proto"
# shellcheck disable=SC2046 # generated file names have no spaces
javac -nowarn -proc:none -d "$out/classes" -cp "$cp:$generated" "$here/Example.java" $(find "$out/src" -name '*.java')
java -cp "$out/classes:$cp" Example
