# syntax=docker/dockerfile:1
#
# navad as a container: a static binary on a distroless base.
#
#   docker build -t navad .
#   docker run -p 8080:8080 -e NAVAD_ADMIN_KEY=… -e NAVAD_REDIS_URL=redis://redis:6379 navad
#
# h3-go is cgo (Uber's H3 C library), so the binary is linked statically with
# the C toolchain; netgo and osusergo keep glibc's resolver and user lookup
# (which cannot be linked statically) out of it.

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -tags netgo,osusergo -trimpath \
      -ldflags '-s -w -linkmode external -extldflags "-static"' \
      -o /out/navad ./cmd/navad
RUN mkdir -p /out/data

# busybox's wget, for the container health check (distroless has no shell
# and no HTTP client); busybox images are statically linked.
FROM busybox:1.37-musl AS busybox

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/navad /navad
COPY --from=busybox /bin/busybox /busybox
# navad keeps its embedded store here, or with NAVAD_REDIS_URL the replica's
# tracking spool. It belongs to the nonroot user (uid 65532), and a named
# volume mounted on it starts with that owner.
COPY --from=build --chown=65532:65532 /out/data /data
ENV NAVAD_DATA_DIR=/data
USER nonroot:nonroot
EXPOSE 8080
HEALTHCHECK --interval=5s --timeout=3s --start-period=60s --retries=3 \
  CMD ["/busybox", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/readyz"]
ENTRYPOINT ["/navad"]
