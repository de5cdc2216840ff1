# syntax=docker/dockerfile:1
# One image with both natter binaries (compose.yaml picks the command):
#   natter-functions            the worker (all domains, or FUNCTIONS=a,b)
#   natter-functions migrate    create the database and apply sql/migrations
#   natter-edge                 WebSocket + HTTP edge
# Migrations are embedded in the binary; nothing else is read from disk.

FROM golang:1.26 AS build
WORKDIR /src
ENV CGO_ENABLED=0
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/natter-functions ./functions && \
    go build -trimpath -ldflags="-s -w" -o /out/natter-edge ./edge

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
USER nonroot:nonroot
# 8080: edge (EDGE_ADDR); 9101: worker metrics (METRICS_ADDR, set it to :9101).
EXPOSE 8080 9101
CMD ["natter-edge"]
