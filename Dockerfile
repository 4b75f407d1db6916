# engram-ops container image: a static binary in an empty (scratch) image,
# running as an unprivileged user with its data on the /data volume.
#
#   docker build -t engram-ops --build-arg VERSION=$(git describe --tags --always) .
#   docker run -d -p 7432:7432 -v engram-data:/data -e ENGRAM_AUTH_MODE=api_key engram-ops
#
# The server is configured through ENGRAM_* variables (runbooks/deployment.md):
# it listens on 0.0.0.0:7432, which needs API keys (auth.mode = api_key) or
# ENGRAM_AUTH_INSECURE_ALLOW_NO_AUTH=true.
#
# The final stage takes the binary from the stage named "build", so a binary
# built by `make build` can replace it without a Go toolchain image:
#   podman build --build-context build=DIR .   (DIR/out/engram-ops, DIR/out/data/)

ARG GO_IMAGE=golang:1.26-bookworm

FROM ${GO_IMAGE} AS build
ARG VERSION=dev
ARG REVISION=unknown
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION} -X main.revision=${REVISION}" \
      -o /out/engram-ops ./cmd/engram-ops \
 && mkdir -p /out/data

FROM scratch
COPY --from=build /out/engram-ops /engram-ops
COPY --from=build --chown=65532:65532 /out/data /data
ENV ENGRAM_LISTEN=0.0.0.0:7432 \
    ENGRAM_DATA_DIR=/data \
    ENGRAM_LOG_FORMAT=json
USER 65532:65532
VOLUME ["/data"]
EXPOSE 7432
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
  CMD ["/engram-ops", "health", "--quiet"]
ENTRYPOINT ["/engram-ops"]
CMD ["serve"]
