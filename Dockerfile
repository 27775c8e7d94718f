# The ImmichVR backend as a container: one static binary, a CA bundle for
# HTTPS to Immich, and a volume for its data. Nothing else: no shell, no curl.
#
#   ./scripts/static-build.sh          # target/x86_64-unknown-linux-musl/release/immichvr
#   docker build -t immichvr .
#   docker run -d -p 3000:3000 -v immichvr-data:/data immichvr
#
# scripts/chroot-test.sh runs exactly what the COPY lines below copy in an
# empty chroot, so keep every file the image needs in a COPY line.

FROM debian:bookworm-slim AS base
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir /data && chown 10001:10001 /data

FROM scratch
COPY target/x86_64-unknown-linux-musl/release/immichvr /immichvr
COPY --from=base /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=base --chown=10001:10001 /data /data
ENV DATA_DIR=/data BACKEND_PORT=3000 BIND_ADDR=0.0.0.0
USER 10001:10001
VOLUME /data
EXPOSE 3000
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["/immichvr", "healthcheck"]
ENTRYPOINT ["/immichvr"]
CMD ["serve"]
