# Production image: builds the server and the WASM console, then ships only
# the binary, the site and the Avro contract on a slim base.
FROM rust:1.95-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends make gcc g++ pkg-config \
 && rm -rf /var/lib/apt/lists/*
RUN rustup target add wasm32-unknown-unknown \
 && cargo install cargo-leptos --version 0.3.10 --locked
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
RUN WBG="$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')" \
 && cargo install wasm-bindgen-cli --version "$WBG"
COPY . .
RUN cargo leptos build --release

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home /app attest
WORKDIR /app
COPY --from=build /src/target/release/attest /usr/local/bin/attest
COPY --from=build /src/target/site /app/site
COPY schemas /app/schemas
ENV LEPTOS_OUTPUT_NAME=attest \
    LEPTOS_SITE_ROOT=/app/site \
    LEPTOS_SITE_PKG_DIR=pkg \
    LEPTOS_ENV=PROD \
    ATTEST_LISTEN=0.0.0.0:3030 \
    ATTEST_SCHEMAS_DIR=/app/schemas
# The spool (accepted events the broker has not acknowledged yet) and the
# integrity signing keys live under /app/.data: owned by the service user,
# and a volume, so neither is lost when the container is replaced.
RUN mkdir -p /app/.data && chown attest /app/.data
VOLUME /app/.data
USER attest
EXPOSE 3030
HEALTHCHECK --interval=10s --timeout=3s CMD curl -sf http://127.0.0.1:3030/healthz || exit 1
ENTRYPOINT ["attest"]
CMD ["serve"]
