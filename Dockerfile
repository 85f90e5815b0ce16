# vidgate in a container: a multi-stage build, then a slim runtime image that runs as an
# unprivileged user. Written and reviewed, but not built where vidgate is developed (no
# Docker engine runs there): see README.md, "Docker".
#
#   docker build -t vidgate .
#   docker run -p 8080:8080 -v "$PWD/vidgate.toml:/etc/vidgate/vidgate.toml:ro" vidgate
#
# The config is read from /etc/vidgate/vidgate.toml (mount yours there; the one baked in
# serves the built-in demo origin). SIGHUP reloads it: `docker kill -s HUP <container>`.
# SIGTERM (`docker stop`) drains in-flight requests within proxy.shutdown_timeout: give
# `docker stop -t` more than that.

# --- build -------------------------------------------------------------------------------------
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
# The manifest and lock first, with stub targets, so that the dependencies are a cached layer
# of their own and a source change rebuilds only vidgate.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src benches \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && for b in decision store memory client_tokens; do echo 'fn main() {}' > "benches/$b.rs"; done \
    && cargo build --release --locked --bin vidgate \
    && rm -rf src benches
COPY src src
COPY benches benches
COPY README.md ./
# touch: the stubs' build outputs are newer than the copied sources' timestamps.
RUN touch src/main.rs src/lib.rs && cargo build --release --locked --bin vidgate

# --- runtime -----------------------------------------------------------------------------------
FROM debian:bookworm-slim
# ca-certificates: the system roots for https:// origins (vidgate also carries Mozilla's).
# curl: the HEALTHCHECK.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin vidgate
COPY --from=build /src/target/release/vidgate /usr/local/bin/vidgate
COPY docker/vidgate.toml /etc/vidgate/vidgate.toml
USER vidgate:vidgate
ENV VIDGATE_CONFIG=/etc/vidgate/vidgate.toml
EXPOSE 8080
# The admin API listens on the container's loopback (admin.listen in the baked-in config):
# the health check reaches it from inside; nothing outside the container can.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:9090/healthz"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["vidgate"]
CMD ["serve", "--config", "/etc/vidgate/vidgate.toml"]
