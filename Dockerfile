# The `audit` command and the shipped plugin libraries in a small image, running as a
# non-root user. Build: `docker build -t audit-trail .`
# Run:   `docker run --rm -i -v "$PWD/audit_logs:/var/lib/audit" audit-trail emit --dir /var/lib/audit < examples/events.jsonl`
#        `docker run --rm -v "$PWD/audit_logs:/var/lib/audit:ro" audit-trail verify /var/lib/audit`
# The mounted directory must be owned by UID 10001 (or the UID you pass with --user) and
# not writable by group or others: the trail refuses it otherwise (docs/configuration.md).

# --- build ---
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
# --locked: the versions in Cargo.lock, as tested.
RUN cargo build --release --locked -p audit-cli \
        -p audit-backend-sqlite -p audit-backend-postgres -p audit-backend-syslog -p audit-backend-file \
    && mkdir -p /out/plugins \
    && cp target/release/audit /out/ \
    && cp target/release/libaudit_backend_*.so /out/plugins/ \
    && /out/audit completions bash > /out/audit.bash \
    && /out/audit man > /out/audit.1

# --- run ---
FROM debian:bookworm-slim
RUN groupadd --system --gid 10001 audit \
    && useradd --system --uid 10001 --gid audit --home-dir /var/lib/audit --shell /usr/sbin/nologin audit \
    && install -d -o audit -g audit -m 0700 /var/lib/audit
COPY --from=build /out/audit /usr/local/bin/audit
# Plugin libraries: root-owned, not writable by others (the loader refuses them otherwise).
COPY --from=build --chmod=0755 /out/plugins/ /usr/local/lib/audit/plugins/
COPY --from=build /out/audit.bash /usr/share/bash-completion/completions/audit
COPY --from=build /out/audit.1 /usr/local/share/man/man1/audit.1
USER audit
WORKDIR /var/lib/audit
ENTRYPOINT ["audit"]
CMD ["--help"]
