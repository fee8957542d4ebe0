# The cutover image: a static binary on an empty base, so that it builds on
# a machine that cannot pull any image. The binary and the CA bundle are
# built and staged beforehand, by scripts/build-images or by hand:
#
#   CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o cutover ./cmd/cutover
#   cp /etc/ssl/certs/ca-certificates.crt .
#   docker build -t cutover .
#
# .dockerignore keeps everything else out of the build context.
FROM scratch
# For outbound TLS (ACME, HTTPS backends, webhooks).
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY cutover /cutover
# HTTP, HTTPS, admin (metrics, health, API).
EXPOSE 80 443 8081
# Runs as root: reading the Docker socket needs it, and a scratch image has
# no user database to name another user by.
ENTRYPOINT ["/cutover"]
CMD ["run"]
